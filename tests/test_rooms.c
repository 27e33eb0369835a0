/* The aggregator's rooms stay rooms (aggregator/README.md): read from the
 * sources, every #include of another room names that room's one public
 * header and follows the dependency direction (http -> render -> core,
 * http -> replica -> core, http -> net -> core, nothing back); aggregator headers are included
 * by their path from the repository root; no source sits beside main.c;
 * inside http, request.c (what handlers share) knows neither the route
 * table nor the server. Runs from the repository root, as run-tests.sh
 * does. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

typedef struct {
    const char *name;
    const char *header;         /* the one others include */
    const char *may_use;        /* rooms it may include, space separated */
} room_t;

static const room_t s_rooms[] = {
    { "core", "agg.h", "" },
    { "render", "render.h", "core" },
    { "replica", "replica.h", "core" },
    { "net", "net.h", "core" },
    { "http", "api.h", "core render replica net" },
};
#define NROOMS (sizeof(s_rooms) / sizeof(s_rooms[0]))

static const room_t *
s_room(const char *name, size_t len)
{
    for (size_t i = 0; i < NROOMS; i++)
        if (strlen(s_rooms[i].name) == len
            && strncmp(s_rooms[i].name, name, len) == 0)
            return &s_rooms[i];
    return NULL;
}

static int
s_word_in(const char *word, size_t len, const char *list)
{
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, " ");
        if (n == len && strncmp(p, word, len) == 0)
            return 1;
        p += n;
        while (*p == ' ')
            p++;
    }
    return 0;
}

static int
s_is_source(const char *name)
{
    size_t n = strlen(name);
    return n > 2 && name[n - 2] == '.' && (name[n - 1] == 'c'
                                           || name[n - 1] == 'h');
}

/* Whether aggregator/ holds a header of this name in some room. */
static int
s_aggregator_header(const char *base)
{
    char path[1024];
    struct stat st;
    for (size_t i = 0; i < NROOMS; i++) {
        snprintf(path, sizeof(path), "aggregator/%s/%s", s_rooms[i].name,
                 base);
        if (stat(path, &st) == 0)
            return 1;
    }
    return 0;
}

/* Checks every include of one file; from is its room, NULL for main.c.
 * Returns the includes seen. */
static int
s_check_file(const char *path, const room_t *from)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    char line[1024];
    int lineno = 0, seen = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        if (strncmp(line, "#include \"", 10) != 0)
            continue;
        seen++;
        const char *name = line + 10;
        size_t len = strcspn(name, "\"");
        ck_assert_msg(len < sizeof(line) - 10, "%s:%d", path, lineno);
        char inc[512];
        snprintf(inc, sizeof(inc), "%.*s", (int)len, name);
        if (strncmp(inc, "aggregator/", 11) != 0) {
            ck_assert_msg(!strchr(inc, '/') && !s_aggregator_header(inc),
                          "%s:%d: include aggregator headers by their path "
                          "from the root, not \"%s\"", path, lineno, inc);
            continue;
        }
        const char *room = inc + 11;
        const char *slash = strchr(room, '/');
        ck_assert_msg(slash != NULL, "%s:%d: %s is in no room", path, lineno,
                      inc);
        const room_t *to = s_room(room, (size_t)(slash - room));
        ck_assert_msg(to != NULL, "%s:%d: no room %s", path, lineno, inc);
        if (from == to)
            continue;
        ck_assert_msg(strcmp(slash + 1, to->header) == 0,
                      "%s:%d: other rooms include only aggregator/%s/%s, "
                      "not %s", path, lineno, to->name, to->header, inc);
        ck_assert_msg(!from || s_word_in(to->name, strlen(to->name),
                                         from->may_use),
                      "%s:%d: room %s must not depend on room %s", path,
                      lineno, from->name, to->name);
    }
    fclose(f);
    return seen;
}

START_TEST(test_rooms_keep_their_direction)
{
    int files = 0;
    for (size_t i = 0; i < NROOMS; i++) {
        char dir[256];
        snprintf(dir, sizeof(dir), "aggregator/%s", s_rooms[i].name);
        DIR *d = opendir(dir);
        ck_assert_msg(d != NULL, "no room %s (run from the repository "
                      "root)", dir);
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!s_is_source(e->d_name))
                continue;
            char path[512];
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            s_check_file(path, &s_rooms[i]);
            files++;
        }
        closedir(d);
        char pub[512];
        struct stat st;
        snprintf(pub, sizeof(pub), "%s/%s", dir, s_rooms[i].header);
        ck_assert_msg(stat(pub, &st) == 0, "room %s lacks %s",
                      s_rooms[i].name, pub);
    }
    ck_assert_int_gt(files, 30);
    ck_assert_int_gt(s_check_file("aggregator/main.c", NULL), 3);
}
END_TEST

START_TEST(test_no_source_beside_main)
{
    DIR *d = opendir("aggregator");
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d)))
        ck_assert_msg(!s_is_source(e->d_name)
                      || strcmp(e->d_name, "main.c") == 0,
                      "aggregator/%s belongs in a room (README.md)",
                      e->d_name);
    closedir(d);
}
END_TEST

/* Inside http, calls go server -> routes -> handlers -> request. */
START_TEST(test_http_request_knows_no_routes)
{
    const char *files[] = { "aggregator/http/request.c",
                            "aggregator/http/request.h" };
    for (size_t i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "r");
        ck_assert_ptr_nonnull(f);
        char line[1024];
        while (fgets(line, sizeof(line), f))
            ck_assert_msg(!strstr(line, "#include \"aggregator/http/routes.h")
                          && !strstr(line, "api_routes"),
                          "%s reaches back to the route table: %s",
                          files[i], line);
        fclose(f);
    }
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("rooms");
    TCase *tc = tcase_create("aggregator");
    tcase_add_test(tc, test_rooms_keep_their_direction);
    tcase_add_test(tc, test_no_source_beside_main);
    tcase_add_test(tc, test_http_request_knows_no_routes);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
