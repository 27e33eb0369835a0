/* Renderers: the SVG flame graph must be well-formed XML whatever the frame
 * names hold, with widths proportional to the values; the pprof export must
 * gunzip and decode into a Profile whose samples add up to the tree and
 * whose locations name the right functions. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "aggregator/core/flame.h"
#include "aggregator/render/render.h"
#include "profile.pb-c.h"
#include "testutil.h"

/* ------------------------------------------------- strict XML checker */

/* A small well-formedness checker (XML 1.0 without DTDs): one root
 * element, matching tags, unique quoted attributes, no raw '<' or bad '&'
 * in text or attribute values, valid UTF-8 and only XML characters,
 * comments, CDATA and processing instructions in the right places. */
typedef struct {
    const unsigned char *p, *end;
    const char *err;
    const unsigned char *err_at;
} s_xml_t;

static int
s_fail(s_xml_t *x, const char *why)
{
    if (!x->err) {
        x->err = why;
        x->err_at = x->p;
    }
    return -1;
}

/* Decodes one character; 0 on invalid UTF-8 or a non-XML character. */
static size_t
s_xml_char(const unsigned char *p, const unsigned char *end, uint32_t *out)
{
    size_t n;
    uint32_t cp;
    if (p >= end)
        return 0;
    if (p[0] < 0x80) {
        n = 1;
        cp = p[0];
    } else if ((p[0] & 0xe0) == 0xc0) {
        n = 2;
        cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        n = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (cp < min_cp[n])
        return 0;
    int ok = cp == 0x9 || cp == 0xa || cp == 0xd
        || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd)
        || (cp >= 0x10000 && cp <= 0x10ffff);
    if (!ok)
        return 0;
    *out = cp;
    return n;
}

static int
s_is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void
s_skip_space(s_xml_t *x)
{
    while (x->p < x->end && s_is_space(*x->p))
        x->p++;
}

static int
s_starts(s_xml_t *x, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(x->end - x->p) >= n && memcmp(x->p, s, n) == 0;
}

static int
s_name_start(unsigned c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
        || c == ':' || c >= 0x80;
}

static int
s_name_char(unsigned c)
{
    return s_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static int
s_name(s_xml_t *x, const unsigned char **name, size_t *len)
{
    if (x->p >= x->end || !s_name_start(*x->p))
        return s_fail(x, "expected a name");
    *name = x->p;
    while (x->p < x->end && s_name_char(*x->p))
        x->p++;
    *len = (size_t)(x->p - *name);
    return 0;
}

/* After '&': a predefined entity or a character reference. */
static int
s_reference(s_xml_t *x)
{
    static const char *const ents[] = { "lt;", "gt;", "amp;", "quot;",
                                        "apos;" };
    x->p++;
    for (size_t i = 0; i < 5; i++) {
        if (s_starts(x, ents[i])) {
            x->p += strlen(ents[i]);
            return 0;
        }
    }
    if (x->p < x->end && *x->p == '#') {
        x->p++;
        int hex = x->p < x->end && *x->p == 'x';
        if (hex)
            x->p++;
        uint64_t v = 0;
        size_t digits = 0;
        for (; x->p < x->end && *x->p != ';'; x->p++, digits++) {
            unsigned c = *x->p;
            unsigned d;
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (hex && c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
            else if (hex && c >= 'A' && c <= 'F')
                d = c - 'A' + 10;
            else
                return s_fail(x, "bad character reference");
            v = v * (hex ? 16 : 10) + d;
            if (v > 0x10ffff)
                return s_fail(x, "character reference out of range");
        }
        if (x->p >= x->end || digits == 0)
            return s_fail(x, "unterminated character reference");
        x->p++;
        int ok = v == 0x9 || v == 0xa || v == 0xd
            || (v >= 0x20 && v <= 0xd7ff) || (v >= 0xe000 && v <= 0xfffd)
            || v >= 0x10000;
        return ok ? 0 : s_fail(x, "reference to a non-XML character");
    }
    return s_fail(x, "unknown entity");
}

/* Character data up to '<' (text) or the quote (attribute value). */
static int
s_chars(s_xml_t *x, int quote)
{
    while (x->p < x->end) {
        unsigned c = *x->p;
        if (quote ? c == (unsigned)quote : c == '<')
            return 0;
        if (c == '<')
            return s_fail(x, "raw '<' in attribute value");
        if (c == '&') {
            if (s_reference(x) != 0)
                return -1;
            continue;
        }
        if (!quote && s_starts(x, "]]>"))
            return s_fail(x, "']]>' in text");
        uint32_t cp;
        size_t n = s_xml_char(x->p, x->end, &cp);
        if (!n)
            return s_fail(x, "invalid UTF-8 or non-XML character");
        x->p += n;
    }
    return quote ? s_fail(x, "unterminated attribute value") : 0;
}

/* Skips to after `terminator`, checking characters on the way. */
static int
s_until(s_xml_t *x, const char *terminator, int forbid_dashes)
{
    while (x->p < x->end) {
        if (s_starts(x, terminator)) {
            x->p += strlen(terminator);
            return 0;
        }
        if (forbid_dashes && s_starts(x, "--"))
            return s_fail(x, "'--' inside a comment");
        uint32_t cp;
        size_t n = s_xml_char(x->p, x->end, &cp);
        if (!n)
            return s_fail(x, "invalid UTF-8 or non-XML character");
        x->p += n;
    }
    return s_fail(x, "unterminated construct");
}

/* Comments, PIs and white space between elements at the top level. */
static int
s_misc(s_xml_t *x)
{
    for (;;) {
        s_skip_space(x);
        if (s_starts(x, "<!--")) {
            x->p += 4;
            if (s_until(x, "-->", 1) != 0)
                return -1;
        } else if (s_starts(x, "<?")) {
            x->p += 2;
            if (s_until(x, "?>", 0) != 0)
                return -1;
        } else {
            return 0;
        }
    }
}

typedef struct {
    const unsigned char *name;
    size_t len;
} s_span_t;

/* Parses one element and everything inside it, iteratively. */
static int
s_element(s_xml_t *x)
{
    s_span_t *stack = NULL;
    size_t depth = 0, cap = 0;
    int rc = -1;

    for (;;) {
        /* at '<' of a start tag */
        x->p++;
        const unsigned char *name;
        size_t len;
        if (s_name(x, &name, &len) != 0)
            goto cleanup;
        s_span_t attrs[64];
        size_t nattrs = 0;
        int empty = 0;
        for (;;) {
            int had_space = x->p < x->end && s_is_space(*x->p);
            s_skip_space(x);
            if (x->p >= x->end) {
                s_fail(x, "unterminated start tag");
                goto cleanup;
            }
            if (*x->p == '>') {
                x->p++;
                break;
            }
            if (s_starts(x, "/>")) {
                x->p += 2;
                empty = 1;
                break;
            }
            if (!had_space) {
                s_fail(x, "attributes need white space between them");
                goto cleanup;
            }
            const unsigned char *aname;
            size_t alen;
            if (s_name(x, &aname, &alen) != 0)
                goto cleanup;
            for (size_t i = 0; i < nattrs; i++) {
                if (attrs[i].len == alen
                    && memcmp(attrs[i].name, aname, alen) == 0) {
                    s_fail(x, "duplicate attribute");
                    goto cleanup;
                }
            }
            if (nattrs < 64)
                attrs[nattrs++] = (s_span_t){ aname, alen };
            s_skip_space(x);
            if (x->p >= x->end || *x->p != '=') {
                s_fail(x, "expected '='");
                goto cleanup;
            }
            x->p++;
            s_skip_space(x);
            if (x->p >= x->end || (*x->p != '"' && *x->p != '\'')) {
                s_fail(x, "attribute value must be quoted");
                goto cleanup;
            }
            int quote = *x->p++;
            if (s_chars(x, quote) != 0)
                goto cleanup;
            x->p++;
        }
        if (!empty) {
            if (depth == cap) {
                cap = cap ? cap * 2 : 64;
                s_span_t *grown = realloc(stack, cap * sizeof(*stack));
                if (!grown) {
                    s_fail(x, "out of memory");
                    goto cleanup;
                }
                stack = grown;
            }
            stack[depth++] = (s_span_t){ name, len };
        }
        /* content until the next start tag, or the end of the root */
        for (;;) {
            if (depth == 0) {
                rc = 0;
                goto cleanup;
            }
            if (s_chars(x, 0) != 0)
                goto cleanup;
            if (x->p >= x->end) {
                s_fail(x, "unclosed element");
                goto cleanup;
            }
            if (s_starts(x, "<!--")) {
                x->p += 4;
                if (s_until(x, "-->", 1) != 0)
                    goto cleanup;
            } else if (s_starts(x, "<![CDATA[")) {
                x->p += 9;
                if (s_until(x, "]]>", 0) != 0)
                    goto cleanup;
            } else if (s_starts(x, "<?")) {
                x->p += 2;
                if (s_until(x, "?>", 0) != 0)
                    goto cleanup;
            } else if (s_starts(x, "</")) {
                x->p += 2;
                const unsigned char *ename;
                size_t elen;
                if (s_name(x, &ename, &elen) != 0)
                    goto cleanup;
                s_span_t *open = &stack[depth - 1];
                if (open->len != elen
                    || memcmp(open->name, ename, elen) != 0) {
                    s_fail(x, "end tag does not match start tag");
                    goto cleanup;
                }
                s_skip_space(x);
                if (x->p >= x->end || *x->p != '>') {
                    s_fail(x, "bad end tag");
                    goto cleanup;
                }
                x->p++;
                depth--;
            } else {
                break; /* a child start tag */
            }
        }
    }
cleanup:
    free(stack);
    return rc;
}

/* NULL when doc is well-formed, else the reason (and *offset). */
static const char *
s_xml_check(const char *doc, size_t len, size_t *offset)
{
    s_xml_t x = { (const unsigned char *)doc,
                  (const unsigned char *)doc + len, NULL, NULL };
    if (s_starts(&x, "<?xml")) {
        x.p += 5;
        if (s_until(&x, "?>", 0) != 0)
            goto done;
    }
    if (s_misc(&x) != 0)
        goto done;
    if (!s_starts(&x, "<") || s_starts(&x, "<!")) {
        s_fail(&x, "expected the root element");
        goto done;
    }
    if (s_element(&x) != 0)
        goto done;
    if (s_misc(&x) != 0)
        goto done;
    if (x.p != x.end)
        s_fail(&x, "content after the root element");
done:
    if (x.err && offset)
        *offset = (size_t)(x.err_at - (const unsigned char *)doc);
    return x.err;
}

#define ck_assert_xml(doc, len)                                              \
    do {                                                                     \
        size_t off_ = 0;                                                     \
        const char *why_ = s_xml_check((doc), (len), &off_);                 \
        ck_assert_msg(why_ == NULL, "not well-formed XML at byte %zu: %s",  \
                      off_, why_ ? why_ : "");                               \
    } while (0)

/* --------------------------------------------------- the checker itself */

START_TEST(xml_checker_rejects_broken_documents)
{
    static const char *const bad[] = {
        "<a><b></a></b>",
        "<a>x < y</a>",
        "<a>AT&T</a>",
        "<a x=\"1\" x=\"2\"/>",
        "<a x=1/>",
        "<a x=\"<\"/>",
        "<a>\x01</a>",
        "<a>\xff</a>",
        "<a/><b/>",
        "<a>",
        "<a><!-- x -- y --></a>",
        "<a>&#0;</a>",
    };
    static const char *const good[] = {
        "<?xml version=\"1.0\"?>\n<a x='1' y=\"&lt;&amp;&#39;\"><b/>t&gt;"
        "<![CDATA[ x < y && z ]]><!-- c --></a>\n",
        "<a>caf\xc3\xa9 \xe5\x87\xbd\xe6\x95\xb0</a>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(s_xml_check(bad[i], strlen(bad[i]), NULL) != NULL,
                      "accepted %s", bad[i]);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_xml(good[i], strlen(good[i]));
}
END_TEST

/* ------------------------------------------------------- SVG helpers */

/* Width attribute of the rect of the frame whose tooltip starts with
 * `escaped_name` followed by a newline; -1 when absent. */
static double
s_frame_width(const char *svg, const char *escaped_name)
{
    char key[512];
    snprintf(key, sizeof(key), "<title>%s\n", escaped_name);
    const char *t = strstr(svg, key);
    if (!t)
        return -1;
    const char *w = strstr(t, "width=\"");
    if (!w)
        return -1;
    return strtod(w + 7, NULL);
}

/* The fill of the first frame whose markup starts with `key`. */
static int
s_frame_fill(const char *svg, const char *key, char *out, size_t outlen)
{
    const char *t = strstr(svg, key);
    const char *f = t ? strstr(t, "fill=\"") : NULL;
    const char *e = f ? strchr(f + 6, '"') : NULL;
    if (!e || (size_t)(e - f - 6) >= outlen)
        return -1;
    memcpy(out, f + 6, (size_t)(e - f - 6));
    out[e - f - 6] = '\0';
    return 0;
}

static size_t
s_count(const char *hay, const char *needle)
{
    /* memmem with the remaining length: strstr under ASan re-measures
     * the whole haystack on every call. */
    size_t n = 0, hay_len = strlen(hay), len = strlen(needle);
    const char *end = hay + hay_len;
    for (const char *p = memmem(hay, hay_len, needle, len); p;
         p = memmem(p + len, (size_t)(end - p - len), needle, len))
        n++;
    return n;
}

static flame_node_t *
s_add(flame_t *tree, const char *a, const char *b, const char *c,
      uint64_t ns, uint64_t count)
{
    const char *names[3] = { a, b, c };
    const uint8_t types[3] = { FLAME_USER, FLAME_USER, FLAME_USER };
    size_t n = c ? 3 : b ? 2 : a ? 1 : 0;
    flame_node_t *leaf = flame_add(tree, names, types, n, ns, count);
    ck_assert_ptr_nonnull(leaf);
    return leaf;
}

/* --------------------------------------------------------- SVG tests */

START_TEST(svg_is_well_formed_with_hostile_names)
{
    flame_t *tree = flame_new("Total <all> & \"more\"", 10000);
    ck_assert_ptr_nonnull(tree);
    const char *names[] = {
        "[p] a<b>&c\"d'e",
        "std::map<int, std::vector<char> >::operator[](int const&)",
        "ctl\x01\x1f\x7f" "chars\nnewline",
        "bad\xff\xfeutf8\xc3",
        "caf\xc3\xa9_\xe5\x87\xbd\xe6\x95\xb0",
        "]]><script>alert(1)</script><![CDATA[",
    };
    const uint8_t types[] = { FLAME_PROCESS, FLAME_USER, FLAME_KERNEL,
                              FLAME_LIB, FLAME_JIT, FLAME_UNKNOWN };
    for (size_t i = 1; i <= 6; i++)
        ck_assert_ptr_nonnull(flame_add(tree, names, types, i, 1000000, 1));

    size_t len = 0;
    char *svg = render_flame_svg(tree, "title <&> \"q\"", 1, &len);
    ck_assert_ptr_nonnull(svg);
    ck_assert_uint_eq(len, strlen(svg));
    ck_assert_xml(svg, len);

    ck_assert_ptr_nonnull(strstr(svg, "title &lt;&amp;&gt; &quot;q&quot;"));
    ck_assert_ptr_nonnull(strstr(svg, "<title>[p] a&lt;b&gt;&amp;c&quot;d&#39;e\n"));
    ck_assert_ptr_nonnull(strstr(svg, "<title>std::map&lt;int, std::vector&lt;char&gt; "
                                      "&gt;::operator[](int const&amp;)\n"));
    ck_assert_ptr_nonnull(strstr(svg, "<title>ctl???chars?newline\n"));
    ck_assert_ptr_nonnull(strstr(svg, "<title>bad??utf8?\n"));
    ck_assert_ptr_nonnull(strstr(svg, "<title>caf\xc3\xa9_\xe5\x87\xbd\xe6\x95\xb0\n"));
    ck_assert_ptr_nonnull(strstr(svg, "]]&gt;&lt;script&gt;"));
    /* exactly one script element: ours */
    ck_assert_uint_eq(s_count(svg, "<script"), 1);
    free(svg);
    flame_destroy(&tree);
}
END_TEST

START_TEST(svg_widths_follow_time_or_count)
{
    flame_t *tree = flame_new("app", 1000);
    ck_assert_ptr_nonnull(tree);
    /* by time A:B = 3:1, by count A:B = 1:3 */
    s_add(tree, "main", "A", NULL, 3000000, 1);
    s_add(tree, "main", "B", NULL, 1000000, 3);
    s_add(tree, "main", "A", "A1", 1500000, 0);

    char *svg = render_flame_svg(tree, "t", 1, NULL);
    ck_assert_ptr_nonnull(svg);
    ck_assert_xml(svg, strlen(svg));
    double root = s_frame_width(svg, "app");
    double main_w = s_frame_width(svg, "main");
    double a = s_frame_width(svg, "A"), b = s_frame_width(svg, "B");
    double a1 = s_frame_width(svg, "A1");
    ck_assert(root > 1000);
    ck_assert_double_eq_tol(main_w, root, 0.02);
    /* A total = 3 + 1.5 ms, B = 1 ms, root = 5.5 ms */
    ck_assert_double_eq_tol(a / root, 4.5 / 5.5, 0.001);
    ck_assert_double_eq_tol(b / root, 1.0 / 5.5, 0.001);
    ck_assert_double_eq_tol(a1 / a, 1.5 / 4.5, 0.001);
    ck_assert_ptr_nonnull(strstr(svg, "<title>A\nuser | 1 sample | 4.50 ms | 81.82%"));
    free(svg);

    svg = render_flame_svg(tree, "t", 0, NULL);
    ck_assert_ptr_nonnull(svg);
    root = s_frame_width(svg, "app");
    a = s_frame_width(svg, "A");
    b = s_frame_width(svg, "B");
    ck_assert_double_eq_tol(a / root, 1.0 / 4.0, 0.001);
    ck_assert_double_eq_tol(b / root, 3.0 / 4.0, 0.001);
    /* A1 counted no samples: zero width by count, not drawn */
    ck_assert_double_eq_tol(s_frame_width(svg, "A1"), -1, 0.0001);
    ck_assert_ptr_nonnull(strstr(svg, "<title>B\nuser | 3 samples | 1.00 ms | 75.00%"));
    free(svg);
    flame_destroy(&tree);
}
END_TEST

START_TEST(svg_colours_by_frame_type)
{
    flame_t *tree = flame_new("Total", 1000);
    ck_assert_ptr_nonnull(tree);
    const char *kpath[] = { "[p] p", "[t] t", "same" };
    const uint8_t ktypes[] = { FLAME_PROCESS, FLAME_THREAD, FLAME_KERNEL };
    const char *upath[] = { "[p] q", "[t] u", "same" };
    const uint8_t utypes[] = { FLAME_PROCESS, FLAME_THREAD, FLAME_USER };
    ck_assert_ptr_nonnull(flame_add(tree, kpath, ktypes, 3, 100, 1));
    ck_assert_ptr_nonnull(flame_add(tree, upath, utypes, 3, 100, 1));
    char *svg = render_flame_svg(tree, NULL, 1, NULL);
    ck_assert_ptr_nonnull(svg);

    /* the same name as a kernel and as a user frame, and the two
     * synthetic layers: four different colours */
    char fill_k[64], fill_u[64], fill_p[64], fill_t[64];
    ck_assert_int_eq(s_frame_fill(svg, "<title>same\nkernel |", fill_k,
                                  sizeof(fill_k)), 0);
    ck_assert_int_eq(s_frame_fill(svg, "<title>same\nuser |", fill_u,
                                  sizeof(fill_u)), 0);
    ck_assert_int_eq(s_frame_fill(svg, "<title>[p] p\nprocess |", fill_p,
                                  sizeof(fill_p)), 0);
    ck_assert_int_eq(s_frame_fill(svg, "<title>[t] t\nthread |", fill_t,
                                  sizeof(fill_t)), 0);
    ck_assert_str_ne(fill_k, fill_u);
    ck_assert_str_ne(fill_p, fill_t);
    ck_assert_str_ne(fill_p, fill_k);
    ck_assert_str_ne(fill_t, fill_u);
    free(svg);
    flame_destroy(&tree);
}
END_TEST

START_TEST(svg_elides_narrow_frames_and_stays_bounded)
{
    flame_t *tree = flame_new("app", 1 << 20);
    ck_assert_ptr_nonnull(tree);
    s_add(tree, "main", "hot", NULL, 1000000000, 1000);
    char name[64];
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof(name), "cold_%d", i);
        s_add(tree, "main", name, NULL, 1000, 1); /* 0.0001% each */
    }
    char *svg = render_flame_svg(tree, "t", 1, NULL);
    ck_assert_ptr_nonnull(svg);
    ck_assert_xml(svg, strlen(svg));
    ck_assert_ptr_nonnull(strstr(svg, "<title>hot\n"));
    ck_assert_ptr_null(strstr(svg, "<title>cold_"));
    ck_assert_uint_lt(strlen(svg), 64 * 1024);
    free(svg);
    flame_destroy(&tree);

    /* 100 processes with 130-deep stacks: every frame is 1% wide, so
     * only the frame cap can bound the drawing. */
    tree = flame_new("Total", 1 << 20);
    ck_assert_ptr_nonnull(tree);
    const char *path[130];
    uint8_t types[130];
    char bufs[130][32];
    for (int p = 0; p < 100; p++) {
        for (int d = 0; d < 130; d++) {
            snprintf(bufs[d], sizeof(bufs[d]), "p%d_f%d", p, d);
            path[d] = bufs[d];
            types[d] = FLAME_USER;
        }
        ck_assert_ptr_nonnull(flame_add(tree, path, types, 130, 1000, 1));
    }
    size_t len = 0;
    svg = render_flame_svg(tree, "big", 0, &len);
    ck_assert_ptr_nonnull(svg);
    ck_assert_xml(svg, len);
    size_t frames = s_count(svg, "<g><title>");
    ck_assert_uint_le(frames, 12000);
    ck_assert_uint_gt(frames, 11000);
    ck_assert_ptr_nonnull(strstr(svg, "frames not drawn"));
    ck_assert_uint_lt(len, 16 * 1024 * 1024);
    free(svg);
    flame_destroy(&tree);
}
END_TEST

START_TEST(svg_empty_tree_and_null)
{
    flame_t *tree = flame_new("nothing & nobody", 100);
    ck_assert_ptr_nonnull(tree);
    size_t len = 0;
    char *svg = render_flame_svg(tree, NULL, 1, &len);
    ck_assert_ptr_nonnull(svg);
    ck_assert_xml(svg, len);
    ck_assert_ptr_nonnull(strstr(svg, "nothing &amp; nobody (no samples)"));
    free(svg);
    flame_destroy(&tree);
    ck_assert_ptr_null(render_flame_svg(NULL, "x", 1, &len));
    ck_assert_uint_eq(len, 0);
}
END_TEST

/* Cross-check with a real XML parser when python3 is around: guards the
 * hand-written checker against being too lenient. */
START_TEST(svg_parses_with_python_minidom)
{
    flame_t *tree = flame_new("Total", 1000);
    ck_assert_ptr_nonnull(tree);
    s_add(tree, "a<&>\"'", "b\x01\xff", NULL, 5, 5);
    char *svg = render_flame_svg(tree, "t<", 1, NULL);
    ck_assert_ptr_nonnull(svg);
    char *dir = tu_mkdtemp();
    ck_assert_ptr_nonnull(dir);
    char path[512], cmd[1024];
    snprintf(path, sizeof(path), "%s/g.svg", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(svg, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "python3 -c 'import sys, xml.dom.minidom as m; "
             "d = m.parse(sys.argv[1]); "
             "print(len(d.getElementsByTagName(\"rect\")))' %s", path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    int rects = -1;
    ck_assert_int_eq(fscanf(p, "%d", &rects), 1);
    ck_assert_int_eq(pclose(p), 0);
    /* background + 7 legend swatches + 3 frames */
    ck_assert_int_eq(rects, 1 + 7 + 3);
    tu_rmtree(dir);
    free(dir);
    free(svg);
    flame_destroy(&tree);
}
END_TEST

/* -------------------------------------------------------- pprof tests */

static Perftools__Profiles__Profile *
s_decode_pprof(const unsigned char *gz, size_t len)
{
    /* 15 + 16: accept only a gzip stream, as pprof tools expect. */
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    ck_assert_int_eq(inflateInit2(&zs, 15 + 16), Z_OK);
    size_t cap = 1 << 16, out_len = 0;
    unsigned char *out = malloc(cap);
    ck_assert_ptr_nonnull(out);
    zs.next_in = (Bytef *)gz;
    zs.avail_in = (uInt)len;
    int rc;
    do {
        if (cap - out_len < 4096) {
            cap *= 2;
            out = realloc(out, cap);
            ck_assert_ptr_nonnull(out);
        }
        zs.next_out = out + out_len;
        zs.avail_out = (uInt)(cap - out_len);
        rc = inflate(&zs, Z_NO_FLUSH);
        out_len = cap - zs.avail_out;
        ck_assert_msg(rc == Z_OK || rc == Z_STREAM_END, "inflate: %d", rc);
    } while (rc != Z_STREAM_END);
    ck_assert_uint_eq(zs.avail_in, 0); /* nothing after the gzip member */
    inflateEnd(&zs);
    Perftools__Profiles__Profile *prof =
        perftools__profiles__profile__unpack(NULL, out_len, out);
    free(out);
    ck_assert_ptr_nonnull(prof);
    return prof;
}

static const char *
s_str(const Perftools__Profiles__Profile *prof, int64_t idx)
{
    ck_assert(idx >= 0 && (size_t)idx < prof->n_string_table);
    return prof->string_table[idx];
}

/* Function name per location id (index = id), checking every link:
 * unique non-zero ids, one line per location, a function for each line. */
static const char **
s_location_names(const Perftools__Profiles__Profile *prof, size_t *nids)
{
    uint64_t max_id = 0, max_fn = 0;
    for (size_t i = 0; i < prof->n_location; i++)
        if (prof->location[i]->id > max_id)
            max_id = prof->location[i]->id;
    for (size_t i = 0; i < prof->n_function; i++)
        if (prof->function[i]->id > max_fn)
            max_fn = prof->function[i]->id;
    /* ids are ours to pick, but sparse beyond reason would be a bug */
    ck_assert_uint_le(max_id, 4 * prof->n_location + 16);
    ck_assert_uint_le(max_fn, 4 * prof->n_function + 16);
    const char **fn_names = calloc(max_fn + 1, sizeof(*fn_names));
    const char **names = calloc(max_id + 1, sizeof(*names));
    ck_assert(fn_names && names);
    for (size_t i = 0; i < prof->n_function; i++) {
        const Perftools__Profiles__Function *fn = prof->function[i];
        ck_assert_uint_ne(fn->id, 0);
        ck_assert_ptr_null(fn_names[fn->id]);
        fn_names[fn->id] = s_str(prof, fn->name);
    }
    for (size_t i = 0; i < prof->n_location; i++) {
        const Perftools__Profiles__Location *loc = prof->location[i];
        ck_assert_uint_ne(loc->id, 0);
        ck_assert_ptr_null(names[loc->id]);
        ck_assert_uint_eq(loc->n_line, 1);
        uint64_t fid = loc->line[0]->function_id;
        ck_assert(fid > 0 && fid <= max_fn && fn_names[fid]);
        names[loc->id] = fn_names[fid];
    }
    free(fn_names);
    *nids = (size_t)max_id + 1;
    return names;
}

static const char *
s_location_name(const char **names, size_t nids, uint64_t id)
{
    ck_assert_msg(id < nids && names[id], "unknown location id %llu",
                  (unsigned long long)id);
    return names[id];
}

/* "leaf;...;root-most" for a sample. */
static void
s_sample_path(const char **names, size_t nids,
              const Perftools__Profiles__Sample *s, char *out, size_t outlen)
{
    out[0] = '\0';
    for (size_t i = 0; i < s->n_location_id; i++) {
        if (i)
            strncat(out, ";", outlen - strlen(out) - 1);
        strncat(out, s_location_name(names, nids, s->location_id[i]),
                outlen - strlen(out) - 1);
    }
}

START_TEST(pprof_decodes_and_adds_up)
{
    flame_t *tree = flame_new("app", 1000);
    ck_assert_ptr_nonnull(tree);
    s_add(tree, "main", "work", "memcpy", 30000000, 3);
    s_add(tree, "main", "work", NULL, 20000000, 2);
    s_add(tree, "main", "io<T>&", "memcpy", 5000000, 1);
    s_add(tree, "main", "work", "memcpy", 10000000, 1);

    unsigned char *gz = NULL;
    size_t len = 0;
    ck_assert_int_eq(render_pprof(tree, 0, 10000000, 1700000000123456789ULL,
                                  60000000000ULL, &gz, &len), 0);
    ck_assert_ptr_nonnull(gz);
    ck_assert_uint_gt(len, 18);
    ck_assert_int_eq(gz[0], 0x1f); /* gzip magic */
    ck_assert_int_eq(gz[1], 0x8b);
    Perftools__Profiles__Profile *prof = s_decode_pprof(gz, len);
    size_t nids = 0;
    const char **names = s_location_names(prof, &nids);

    ck_assert_uint_ge(prof->n_string_table, 1);
    ck_assert_str_eq(prof->string_table[0], "");
    ck_assert_uint_eq(prof->n_sample_type, 2);
    ck_assert_str_eq(s_str(prof, prof->sample_type[0]->type), "samples");
    ck_assert_str_eq(s_str(prof, prof->sample_type[0]->unit), "count");
    ck_assert_str_eq(s_str(prof, prof->sample_type[1]->type), "cpu");
    ck_assert_str_eq(s_str(prof, prof->sample_type[1]->unit), "nanoseconds");
    ck_assert_ptr_nonnull(prof->period_type);
    ck_assert_str_eq(s_str(prof, prof->period_type->type), "cpu");
    ck_assert_int_eq(prof->period, 10000000);
    ck_assert_int_eq(prof->time_nanos, 1700000000123456789LL);
    ck_assert_int_eq(prof->duration_nanos, 60000000000LL);
    ck_assert_str_eq(s_str(prof, prof->default_sample_type), "cpu");

    /* functions deduplicated: main, work, memcpy, io<T>& */
    ck_assert_uint_eq(prof->n_function, 4);
    ck_assert_uint_eq(prof->n_location, 4);
    for (size_t i = 0; i < prof->n_function; i++)
        for (size_t j = i + 1; j < prof->n_function; j++)
            ck_assert_str_ne(s_str(prof, prof->function[i]->name),
                             s_str(prof, prof->function[j]->name));
    for (size_t i = 0; i < prof->n_string_table; i++)
        for (size_t j = i + 1; j < prof->n_string_table; j++)
            ck_assert_str_ne(prof->string_table[i], prof->string_table[j]);

    /* one sample per distinct path ending with self value */
    ck_assert_uint_eq(prof->n_sample, 3);
    int64_t sum_count = 0, sum_ns = 0;
    int seen = 0;
    for (size_t i = 0; i < prof->n_sample; i++) {
        const Perftools__Profiles__Sample *s = prof->sample[i];
        ck_assert_uint_eq(s->n_value, 2);
        sum_count += s->value[0];
        sum_ns += s->value[1];
        char path[256];
        s_sample_path(names, nids, s, path, sizeof(path));
        if (strcmp(path, "memcpy;work;main") == 0) {
            ck_assert_int_eq(s->value[0], 4);
            ck_assert_int_eq(s->value[1], 40000000);
            seen |= 1;
        } else if (strcmp(path, "work;main") == 0) {
            ck_assert_int_eq(s->value[0], 2);
            ck_assert_int_eq(s->value[1], 20000000);
            seen |= 2;
        } else if (strcmp(path, "memcpy;io<T>&;main") == 0) {
            ck_assert_int_eq(s->value[0], 1);
            ck_assert_int_eq(s->value[1], 5000000);
            seen |= 4;
        } else {
            ck_abort_msg("unexpected sample path %s", path);
        }
    }
    ck_assert_int_eq(seen, 7);
    flame_node_t *root = flame_root(tree);
    ck_assert_int_eq(sum_count, (int64_t)root->total_count);
    ck_assert_int_eq(sum_ns, (int64_t)root->total_ns);

    free(names);
    perftools__profiles__profile__free_unpacked(prof, NULL);
    free(gz);
    flame_destroy(&tree);
}
END_TEST

START_TEST(pprof_off_cpu_types_and_root_self)
{
    flame_t *tree = flame_new("task-1", 1000);
    ck_assert_ptr_nonnull(tree);
    s_add(tree, "main", "read", NULL, 7000, 2);
    s_add(tree, NULL, NULL, NULL, 500, 1); /* credited to the root */

    unsigned char *gz = NULL;
    size_t len = 0;
    ck_assert_int_eq(render_pprof(tree, 1, 0, 0, 0, &gz, &len), 0);
    Perftools__Profiles__Profile *prof = s_decode_pprof(gz, len);
    size_t nids = 0;
    const char **names = s_location_names(prof, &nids);
    ck_assert_str_eq(s_str(prof, prof->sample_type[0]->type), "switches");
    ck_assert_str_eq(s_str(prof, prof->sample_type[0]->unit), "count");
    ck_assert_str_eq(s_str(prof, prof->sample_type[1]->type), "off_cpu");
    ck_assert_str_eq(s_str(prof, prof->sample_type[1]->unit), "nanoseconds");
    ck_assert_str_eq(s_str(prof, prof->period_type->type), "switches");
    ck_assert_int_eq(prof->period, 1);
    ck_assert_uint_eq(prof->n_sample, 2);
    int64_t sum_count = 0, sum_ns = 0;
    int root_seen = 0;
    for (size_t i = 0; i < prof->n_sample; i++) {
        char path[128];
        s_sample_path(names, nids, prof->sample[i], path, sizeof(path));
        if (strcmp(path, "task-1") == 0)
            root_seen = 1;
        else
            ck_assert_str_eq(path, "read;main");
        sum_count += prof->sample[i]->value[0];
        sum_ns += prof->sample[i]->value[1];
    }
    ck_assert(root_seen);
    ck_assert_int_eq(sum_count, 3);
    ck_assert_int_eq(sum_ns, 7500);
    free(names);
    perftools__profiles__profile__free_unpacked(prof, NULL);
    free(gz);
    flame_destroy(&tree);
}
END_TEST

/* More samples than one packing chunk: the concatenated pieces must still
 * decode as one profile with every sample. */
START_TEST(pprof_many_samples_span_chunks)
{
    flame_t *tree = flame_new("Total", 1 << 20);
    ck_assert_ptr_nonnull(tree);
    char a[32], b[32];
    uint64_t want_count = 0, want_ns = 0;
    for (int i = 0; i < 10000; i++) {
        snprintf(a, sizeof(a), "mid_%d", i % 97);
        snprintf(b, sizeof(b), "leaf_%d", i);
        s_add(tree, "main", a, b, (uint64_t)i * 1000 + 1, (uint64_t)(i % 5) + 1);
        want_ns += (uint64_t)i * 1000 + 1;
        want_count += (uint64_t)(i % 5) + 1;
    }
    unsigned char *gz = NULL;
    size_t len = 0;
    ck_assert_int_eq(render_pprof(tree, 0, 1000000, 1, 2, &gz, &len), 0);
    Perftools__Profiles__Profile *prof = s_decode_pprof(gz, len);
    size_t nids = 0;
    const char **names = s_location_names(prof, &nids);
    ck_assert_uint_eq(prof->n_sample, 10000);
    ck_assert_uint_eq(prof->n_function, 1 + 97 + 10000);
    ck_assert_str_eq(prof->string_table[0], "");
    uint64_t count = 0, ns = 0;
    for (size_t i = 0; i < prof->n_sample; i++) {
        const Perftools__Profiles__Sample *s = prof->sample[i];
        ck_assert_uint_eq(s->n_location_id, 3);
        ck_assert_str_eq(s_location_name(names, nids, s->location_id[2]), "main");
        const char *leaf = s_location_name(names, nids, s->location_id[0]);
        const char *mid = s_location_name(names, nids, s->location_id[1]);
        int li = atoi(leaf + 5);
        char want_mid[32];
        snprintf(want_mid, sizeof(want_mid), "mid_%d", li % 97);
        ck_assert_str_eq(mid, want_mid);
        ck_assert_int_eq(s->value[1], (int64_t)li * 1000 + 1);
        count += (uint64_t)s->value[0];
        ns += (uint64_t)s->value[1];
    }
    ck_assert_uint_eq(count, want_count);
    ck_assert_uint_eq(ns, want_ns);
    free(names);
    perftools__profiles__profile__free_unpacked(prof, NULL);
    free(gz);
    flame_destroy(&tree);
}
END_TEST

START_TEST(pprof_rejects_bad_arguments)
{
    unsigned char *gz = (unsigned char *)"x";
    size_t len = 5;
    ck_assert_int_eq(render_pprof(NULL, 0, 1, 0, 0, &gz, &len), -1);
    flame_t *tree = flame_new("x", 10);
    ck_assert_ptr_nonnull(tree);
    ck_assert_int_eq(render_pprof(tree, 0, 1, 0, 0, NULL, &len), -1);
    /* an empty tree is a valid, empty profile */
    ck_assert_int_eq(render_pprof(tree, 0, 1, 0, 0, &gz, &len), 0);
    Perftools__Profiles__Profile *prof = s_decode_pprof(gz, len);
    size_t nids = 0;
    const char **names = s_location_names(prof, &nids);
    ck_assert_uint_eq(prof->n_sample, 0);
    ck_assert_uint_eq(prof->n_sample_type, 2);
    free(names);
    perftools__profiles__profile__free_unpacked(prof, NULL);
    free(gz);
    flame_destroy(&tree);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("render");
    TCase *tc = tcase_create("svg");
    tcase_add_test(tc, xml_checker_rejects_broken_documents);
    tcase_add_test(tc, svg_is_well_formed_with_hostile_names);
    tcase_add_test(tc, svg_widths_follow_time_or_count);
    tcase_add_test(tc, svg_colours_by_frame_type);
    tcase_add_test(tc, svg_elides_narrow_frames_and_stays_bounded);
    tcase_add_test(tc, svg_empty_tree_and_null);
    if (tu_require_tool("svg_parses_with_python_minidom", "python3"))
        tcase_add_test(tc, svg_parses_with_python_minidom);
    suite_add_tcase(s, tc);
    TCase *tp = tcase_create("pprof");
    tcase_add_test(tp, pprof_decodes_and_adds_up);
    tcase_add_test(tp, pprof_off_cpu_types_and_root_self);
    tcase_add_test(tp, pprof_many_samples_span_chunks);
    tcase_add_test(tp, pprof_rejects_bad_arguments);
    suite_add_tcase(s, tp);
    return tu_run(s);
}
