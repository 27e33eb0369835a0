/* Interactive SVG flame graph of a flame tree.
 *
 * Layout: the root at the bottom (the classic flame graph), children above
 * their parent, sorted by name so the same profile always looks the same,
 * widths proportional to total time or total count. Frames are laid out
 * breadth first into a bounded list: anything narrower than 0.1% of the
 * graph is elided (its subtree with it), depth and frame count are capped,
 * so the document size has a fixed ceiling whatever the tree.
 *
 * Interaction is one inline script working on the emitted rectangles:
 * click to zoom into a frame (its ancestors stay as dimmed full-width
 * bars), "Reset Zoom", a regexp search that highlights frames and reports
 * the matched share of the total (overlaps counted once), and a details
 * line for the hovered frame. Each frame's <title> is its tooltip; its
 * first line is the frame name, which the script reads back for search and
 * re-clipping, so nothing is stored twice more than needed.
 *
 * Names come from binaries and are not trusted: they are escaped for XML,
 * control characters and invalid UTF-8 become '?', and long names are cut,
 * so the output is always well-formed XML. Numbers are printed without
 * printf's locale-dependent floating point. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/render/render.h"

#define S_WIDTH 1200        /* image width, px */
#define S_PAD_X 10          /* left/right margin */
#define S_FRAME_H 16        /* one stack level */
#define S_TOP 56            /* title, subtitle, buttons */
#define S_BOTTOM 44         /* details line, legend */
#define S_FONT_PX 11
#define S_CHAR_W100 649     /* average glyph width *100 at 11px (0.59 em) */
#define S_MIN_PERMILLE 1    /* elide frames under 0.1% of the total */
#define S_MAX_FRAMES 12000  /* ceiling on rectangles per document */
#define S_MAX_DEPTH 1024    /* ceiling on stack levels drawn */
#define S_MAX_TITLE_CHARS 400

/* ------------------------------------------------------------ buffer */

typedef struct {
    char *data;
    size_t len, cap;
    int failed;
} s_buf_t;

static int
s_buf_reserve(s_buf_t *buf, size_t extra)
{
    if (buf->failed)
        return -1;
    if (buf->len + extra + 1 <= buf->cap)
        return 0;
    size_t cap = buf->cap ? buf->cap : 64 * 1024;
    while (cap < buf->len + extra + 1)
        cap *= 2;
    char *grown = realloc(buf->data, cap);
    if (!grown) {
        buf->failed = 1;
        return -1;
    }
    buf->data = grown;
    buf->cap = cap;
    return 0;
}

static void
s_buf_put(s_buf_t *buf, const char *s, size_t n)
{
    if (s_buf_reserve(buf, n) != 0)
        return;
    memcpy(buf->data + buf->len, s, n);
    buf->len += n;
    buf->data[buf->len] = '\0';
}

static void
s_buf_puts(s_buf_t *buf, const char *s)
{
    s_buf_put(buf, s, strlen(s));
}

static void
s_buf_printf(s_buf_t *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
s_buf_printf(s_buf_t *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        buf->failed = 1;
        return;
    }
    if (s_buf_reserve(buf, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf->len += (size_t)n;
}

/* Fixed point with two decimals, independent of the C locale. */
static void
s_buf_fixed2(s_buf_t *buf, uint64_t hundredths)
{
    s_buf_printf(buf, "%llu.%02u", (unsigned long long)(hundredths / 100),
                 (unsigned)(hundredths % 100));
}

/* Length of the valid UTF-8 sequence at s (1..4), 0 when invalid. XML 1.0
 * also refuses surrogates and U+FFFE/U+FFFF. */
static size_t
s_utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
        n = 2;
        cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3;
        cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)
        || cp == 0xfffe || cp == 0xffff)
        return 0;
    return n;
}

/* Appends at most max_chars characters of s, XML-escaped; a longer string
 * ends in "..". Control characters and bad UTF-8 become '?'. */
static void
s_buf_escape(s_buf_t *buf, const char *s, size_t max_chars)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t total = 0;
    for (const unsigned char *q = p; *q && total <= max_chars; total++) {
        size_t n = s_utf8_len(q);
        q += n ? n : 1;
    }
    size_t keep = total > max_chars ? (max_chars >= 2 ? max_chars - 2 : 0)
                                    : total;
    for (size_t i = 0; i < keep; i++) {
        size_t n = s_utf8_len(p);
        if (n == 0) {
            s_buf_put(buf, "?", 1);
            p++;
            continue;
        }
        switch (*p) {
        case '<': s_buf_put(buf, "&lt;", 4); break;
        case '>': s_buf_put(buf, "&gt;", 4); break;
        case '&': s_buf_put(buf, "&amp;", 5); break;
        case '"': s_buf_put(buf, "&quot;", 6); break;
        case '\'': s_buf_put(buf, "&#39;", 5); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                s_buf_put(buf, "?", 1);
            else
                s_buf_put(buf, (const char *)p, n);
        }
        p += n;
    }
    if (total > max_chars && max_chars >= 2)
        s_buf_put(buf, "..", 2);
}

/* 1234567 -> "1,234,567" */
static void
s_buf_thousands(s_buf_t *buf, uint64_t v)
{
    char digits[32];
    int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)v);
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            s_buf_put(buf, ",", 1);
        s_buf_put(buf, &digits[i], 1);
    }
}

static void
s_buf_duration(s_buf_t *buf, uint64_t ns)
{
    if (ns >= 1000000000ULL) {
        s_buf_fixed2(buf, ns / 10000000ULL);
        s_buf_puts(buf, " s");
    } else if (ns >= 1000000ULL) {
        s_buf_fixed2(buf, ns / 10000ULL);
        s_buf_puts(buf, " ms");
    } else {
        s_buf_fixed2(buf, ns / 10ULL);
        s_buf_puts(buf, " us");
    }
}

/* part/whole as a percentage with two decimals. */
static void
s_buf_percent(s_buf_t *buf, uint64_t part, uint64_t whole)
{
    uint64_t hundredths = 0;
    if (whole)
        hundredths = (uint64_t)((double)part * 10000.0 / (double)whole + 0.5);
    s_buf_fixed2(buf, hundredths);
    s_buf_put(buf, "%", 1);
}

/* ------------------------------------------------------------ layout */

typedef struct {
    const flame_node_t *node;
    uint64_t x;      /* offset from the left, in value units */
    uint32_t depth;
} s_frame_t;

typedef struct {
    int by_time;
    s_frame_t *frames;
    size_t nframes, frames_cap;
    const flame_node_t **kids; /* scratch: children of one node */
    size_t kids_cap;
    uint32_t max_depth;
    uint64_t elided;           /* frames dropped by the caps */
} s_layout_t;

static uint64_t
s_value(const s_layout_t *lay, const flame_node_t *node)
{
    return lay->by_time ? node->total_ns : node->total_count;
}

static int
s_cmp_kids(const void *a, const void *b)
{
    const flame_node_t *x = *(const flame_node_t *const *)a;
    const flame_node_t *y = *(const flame_node_t *const *)b;
    int c = strcmp(x->name ? x->name : "", y->name ? y->name : "");
    if (c)
        return c;
    return (int)x->type - (int)y->type;
}

static int
s_push_frame(s_layout_t *lay, const flame_node_t *node, uint64_t x,
             uint32_t depth)
{
    if (lay->nframes == lay->frames_cap) {
        size_t cap = lay->frames_cap ? lay->frames_cap * 2 : 1024;
        s_frame_t *frames = realloc(lay->frames, cap * sizeof(*frames));
        if (!frames)
            return -1;
        lay->frames = frames;
        lay->frames_cap = cap;
    }
    lay->frames[lay->nframes++] = (s_frame_t){ node, x, depth };
    if (depth > lay->max_depth)
        lay->max_depth = depth;
    return 0;
}

/* Breadth first, so when a cap is hit it is the deepest, narrowest
 * frames that go, never a whole sibling subtree at a shallow level. */
static int
s_layout(s_layout_t *lay, const flame_node_t *root)
{
    uint64_t total = s_value(lay, root);
    if (s_push_frame(lay, root, 0, 0) != 0)
        return -1;
    for (size_t i = 0; i < lay->nframes; i++) {
        s_frame_t parent = lay->frames[i];
        const flame_node_t *pnode = parent.node;
        if (pnode->nchildren == 0)
            continue;
        size_t n = 0;
        for (const flame_node_t *c = pnode->first_child; c;
             c = c->next_sibling) {
            if (n == lay->kids_cap) {
                size_t cap = lay->kids_cap ? lay->kids_cap * 2 : 256;
                const flame_node_t **kids =
                    realloc(lay->kids, cap * sizeof(*kids));
                if (!kids)
                    return -1;
                lay->kids = kids;
                lay->kids_cap = cap;
            }
            lay->kids[n++] = c;
        }
        qsort(lay->kids, n, sizeof(*lay->kids), s_cmp_kids);
        uint64_t end = parent.x + s_value(lay, pnode);
        uint64_t x = parent.x;
        for (size_t k = 0; k < n; k++) {
            const flame_node_t *c = lay->kids[k];
            uint64_t v = s_value(lay, c);
            /* A child can never stick out of its parent, even if the
             * tree's totals disagree. */
            if (x >= end)
                v = 0;
            else if (v > end - x)
                v = end - x;
            int visible = v > 0
                && (double)v * 1000.0 >= (double)total * S_MIN_PERMILLE;
            if (visible && parent.depth + 1 < S_MAX_DEPTH
                && lay->nframes < S_MAX_FRAMES) {
                if (s_push_frame(lay, c, x, parent.depth + 1) != 0)
                    return -1;
            } else if (visible) {
                lay->elided++;
            }
            x += v;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ colours */

static const char *
s_type_label(uint8_t type)
{
    switch (type) {
    case FLAME_KERNEL: return "kernel";
    case FLAME_USER: return "user";
    case FLAME_LIB: return "library";
    case FLAME_JIT: return "JIT";
    case FLAME_ROOT: return "root";
    case FLAME_PROCESS: return "process";
    case FLAME_THREAD: return "thread";
    case FLAME_NODE: return "node";
    case FLAME_NAMESPACE: return "namespace";
    case FLAME_POD: return "pod";
    case FLAME_CONTAINER: return "container";
    default: return "unknown";
    }
}

/* Colour family per frame type (the conventions people know from
 * flamegraph.pl and async-profiler: user red, library yellow, kernel
 * orange, JIT green), with the name's hash picking a shade so
 * neighbours stay distinguishable and a name keeps its colour. */
static void
s_colour(uint8_t type, const char *name, unsigned rgb[3])
{
    static const unsigned base[FLAME_TYPE_MAX + 1][6] = {
        /* r min/span, g min/span, b min/span */
        [FLAME_KERNEL] = { 230, 25, 120, 60, 0, 40 },
        [FLAME_USER] = { 205, 50, 50, 70, 45, 35 },
        [FLAME_LIB] = { 195, 40, 180, 50, 40, 45 },
        [FLAME_JIT] = { 60, 60, 185, 55, 60, 40 },
        [FLAME_UNKNOWN] = { 175, 30, 175, 30, 175, 30 },
        [FLAME_ROOT] = { 150, 30, 165, 30, 200, 30 },
        [FLAME_PROCESS] = { 175, 35, 130, 30, 215, 35 },
        [FLAME_THREAD] = { 110, 40, 200, 30, 210, 35 },
        [FLAME_NODE] = { 120, 30, 150, 30, 185, 30 },
        [FLAME_NAMESPACE] = { 100, 30, 170, 30, 170, 30 },
        [FLAME_POD] = { 130, 30, 185, 30, 160, 30 },
        [FLAME_CONTAINER] = { 150, 30, 195, 30, 150, 30 },
    };
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)(name ? name : "");
         *p; p++)
        h = (h ^ *p) * 16777619u;
    unsigned shade = (h >> 8) % 1000; /* 0..999 */
    const unsigned *b = base[type <= FLAME_TYPE_MAX ? type : FLAME_UNKNOWN];
    for (int i = 0; i < 3; i++)
        rgb[i] = b[2 * i] + b[2 * i + 1] * shade / 1000;
}

/* ------------------------------------------------------------ output */

static const char s_style[] =
    "<style type=\"text/css\">\n"
    "text{font-family:Verdana,Helvetica,sans-serif;font-size:11px;"
    "fill:#000}\n"
    "#title{font-size:17px;text-anchor:middle}\n"
    "#subtitle{fill:#555;text-anchor:middle}\n"
    ".btn{fill:#0645ad;cursor:pointer;text-decoration:underline}\n"
    ".btn.off{display:none}\n"
    "#frames g{cursor:pointer}\n"
    "#frames g:hover rect{stroke:#000;stroke-width:0.7}\n"
    "#frames g.anc rect{opacity:0.5}\n"
    "#frames text{pointer-events:none}\n"
    "#matched{text-anchor:end}\n"
    "</style>\n";

/* Written with single quotes only, so it needs no escaping here. */
static const char s_script[] =
    "<script type=\"text/ecmascript\"><![CDATA[\n"
    "'use strict';\n"
    "var F = [], W = 0, X0 = 0, CW = 0, cur = null, term = '';\n"
    "function $(id) { return document.getElementById(id); }\n"
    "function fit(f, w) {\n"
    "  var n = Math.floor((w - 6) / CW), s = '';\n"
    "  if (n >= 3) s = f.name.length <= n ? f.name"
    " : f.name.substring(0, n - 2) + '..';\n"
    "  f.t.textContent = s;\n"
    "}\n"
    "function place(f, x, w) {\n"
    "  f.r.setAttribute('x', x.toFixed(2));\n"
    "  f.r.setAttribute('width', w.toFixed(2));\n"
    "  f.t.setAttribute('x', (x + 3).toFixed(2));\n"
    "  fit(f, w);\n"
    "}\n"
    "function zoom(z) {\n"
    "  var e = 0.02, k = W / z.w;\n"
    "  cur = z;\n"
    "  F.forEach(function (f) {\n"
    "    var inside = f.x >= z.x - e && f.x + f.w <= z.x + z.w + e;\n"
    "    var covers = f.x <= z.x + e && f.x + f.w >= z.x + z.w - e;\n"
    "    if (f.y <= z.y && inside) {\n"
    "      f.g.style.display = ''; f.g.classList.remove('anc');\n"
    "      place(f, X0 + (f.x - z.x) * k, f.w * k);\n"
    "    } else if (f.y > z.y && covers) {\n"
    "      f.g.style.display = ''; f.g.classList.add('anc');\n"
    "      place(f, X0, W);\n"
    "    } else {\n"
    "      f.g.style.display = 'none';\n"
    "    }\n"
    "  });\n"
    "  $('unzoom').classList.remove('off');\n"
    "}\n"
    "function unzoom() {\n"
    "  cur = null;\n"
    "  F.forEach(function (f) {\n"
    "    f.g.style.display = ''; f.g.classList.remove('anc');\n"
    "    place(f, f.x, f.w);\n"
    "  });\n"
    "  $('unzoom').classList.add('off');\n"
    "}\n"
    "function search(re) {\n"
    "  var rx;\n"
    "  try { rx = new RegExp(re); } catch (err) {\n"
    "    $('matched').textContent = 'bad regexp'; return; }\n"
    "  term = re;\n"
    "  var iv = [];\n"
    "  F.forEach(function (f) {\n"
    "    if (re !== '' && rx.test(f.name)) {\n"
    "      f.r.setAttribute('fill', 'rgb(230,0,230)'); iv.push([f.x, f.x + f.w]);\n"
    "    } else {\n"
    "      f.r.setAttribute('fill', f.fill);\n"
    "    }\n"
    "  });\n"
    "  /* union of the matched spans: nested matches count once */\n"
    "  iv.sort(function (a, b) { return a[0] - b[0]; });\n"
    "  var sum = 0, s = 0, e = -1;\n"
    "  iv.forEach(function (v) {\n"
    "    if (v[0] > e) { if (e > s) sum += e - s; s = v[0]; e = v[1]; }\n"
    "    else if (v[1] > e) e = v[1];\n"
    "  });\n"
    "  if (e > s) sum += e - s;\n"
    "  $('matched').textContent = re === '' ? '' :\n"
    "    'Matched: ' + (F.length ? 100 * sum / F[0].w : 0).toFixed(2) + '%';\n"
    "  $('unsearch').classList.toggle('off', re === '');\n"
    "}\n"
    "function ask() {\n"
    "  var re = window.prompt('Search frames (regular expression)', term);\n"
    "  if (re !== null) search(re);\n"
    "}\n"
    "function init() {\n"
    "  var gs = $('frames').getElementsByTagName('g');\n"
    "  CW = +document.documentElement.getAttribute('data-cw');\n"
    "  for (var i = 0; i < gs.length; i++) {\n"
    "    var g = gs[i], r = g.getElementsByTagName('rect')[0];\n"
    "    var tt = g.getElementsByTagName('title')[0].textContent;\n"
    "    var nl = tt.indexOf('\\n');\n"
    "    var f = { g: g, r: r, t: g.getElementsByTagName('text')[0],\n"
    "      name: nl < 0 ? tt : tt.substring(0, nl), fill: r.getAttribute('fill'),\n"
    "      x: +r.getAttribute('x'), w: +r.getAttribute('width'),\n"
    "      y: +r.getAttribute('y') };\n"
    "    g.fi = f; F.push(f);\n"
    "  }\n"
    "  if (F.length) { X0 = F[0].x; W = F[0].w; }\n"
    "  $('frames').addEventListener('click', function (ev) {\n"
    "    var g = ev.target.closest('g'); if (g && g.fi) zoom(g.fi); });\n"
    "  $('frames').addEventListener('mouseover', function (ev) {\n"
    "    var g = ev.target.closest('g');\n"
    "    if (g && g.fi) $('details').textContent =\n"
    "      g.getElementsByTagName('title')[0].textContent.replace('\\n', ' | ');\n"
    "  });\n"
    "  $('frames').addEventListener('mouseout', function () {\n"
    "    $('details').textContent = ' '; });\n"
    "  $('unzoom').addEventListener('click', unzoom);\n"
    "  $('search').addEventListener('click', ask);\n"
    "  $('unsearch').addEventListener('click', function () { search(''); });\n"
    "  window.addEventListener('keydown', function (ev) {\n"
    "    if ((ev.ctrlKey && ev.key === 'f') || ev.key === 'F3') {\n"
    "      ev.preventDefault(); ask(); }\n"
    "    else if (ev.key === 'Escape') { unzoom(); search(''); }\n"
    "  });\n"
    "  var q = /[?&]s=([^&]*)/.exec(window.location.search);\n"
    "  if (q) search(decodeURIComponent(q[1]));\n"
    "}\n"
    "window.addEventListener('load', init);\n"
    "]]></script>\n";

/* "<name>\n<type> | 1,234 samples | 1.23 ms | 12.34%" */
static void
s_emit_tooltip(s_buf_t *buf, const flame_node_t *node,
               const flame_node_t *root, int by_time)
{
    s_buf_escape(buf, node->name, S_MAX_TITLE_CHARS);
    s_buf_puts(buf, "\n");
    s_buf_puts(buf, s_type_label(node->type));
    s_buf_puts(buf, " | ");
    s_buf_thousands(buf, node->total_count);
    s_buf_puts(buf, node->total_count == 1 ? " sample" : " samples");
    if (root->total_ns) {
        s_buf_puts(buf, " | ");
        s_buf_duration(buf, node->total_ns);
    }
    s_buf_puts(buf, " | ");
    if (by_time)
        s_buf_percent(buf, node->total_ns, root->total_ns);
    else
        s_buf_percent(buf, node->total_count, root->total_count);
}

static void
s_emit_frame(s_buf_t *buf, const s_layout_t *lay, const s_frame_t *f,
             uint64_t total, uint64_t graph_bottom)
{
    const uint64_t graph_w100 = (uint64_t)(S_WIDTH - 2 * S_PAD_X) * 100;
    const flame_node_t *node = f->node;
    uint64_t v = s_value(lay, node);
    /* hundredths of a pixel; total > 0 here */
    uint64_t x100 = (uint64_t)S_PAD_X * 100
        + (uint64_t)((double)f->x * (double)graph_w100 / (double)total);
    uint64_t w100 =
        (uint64_t)((double)v * (double)graph_w100 / (double)total);
    if (w100 > graph_w100)
        w100 = graph_w100;
    uint64_t y = graph_bottom - (uint64_t)(f->depth + 1) * S_FRAME_H;
    unsigned rgb[3];
    s_colour(node->type, node->name, rgb);

    s_buf_puts(buf, "<g><title>");
    s_emit_tooltip(buf, node, lay->frames[0].node, lay->by_time);
    s_buf_puts(buf, "</title><rect x=\"");
    s_buf_fixed2(buf, x100);
    s_buf_printf(buf, "\" y=\"%llu\" width=\"", (unsigned long long)y);
    s_buf_fixed2(buf, w100);
    s_buf_printf(buf,
                 "\" height=\"%d\" fill=\"rgb(%u,%u,%u)\" rx=\"2\"/>"
                 "<text x=\"",
                 S_FRAME_H - 1, rgb[0], rgb[1], rgb[2]);
    s_buf_fixed2(buf, x100 + 300);
    s_buf_printf(buf, "\" y=\"%llu\">", (unsigned long long)(y + 11));
    /* Same clipping rule as the script's fit(). */
    uint64_t chars = w100 > 600 ? (w100 - 600) / S_CHAR_W100 : 0;
    if (chars >= 3)
        s_buf_escape(buf, node->name, chars);
    s_buf_puts(buf, "</text></g>\n");
}

static void
s_emit_legend(s_buf_t *buf, uint64_t y)
{
    static const uint8_t types[] = { FLAME_USER, FLAME_LIB, FLAME_KERNEL,
                                     FLAME_JIT, FLAME_UNKNOWN, FLAME_PROCESS,
                                     FLAME_THREAD };
    unsigned x = S_PAD_X;
    for (size_t i = 0; i < sizeof(types); i++) {
        unsigned rgb[3];
        const char *label = s_type_label(types[i]);
        s_colour(types[i], "", rgb);
        s_buf_printf(buf,
                     "<rect x=\"%u\" y=\"%llu\" width=\"10\" height=\"10\" "
                     "fill=\"rgb(%u,%u,%u)\"/><text x=\"%u\" y=\"%llu\">%s"
                     "</text>\n",
                     x, (unsigned long long)(y - 9), rgb[0], rgb[1], rgb[2],
                     x + 14, (unsigned long long)y, label);
        x += 14 + (unsigned)strlen(label) * 13 / 2 + 16;
    }
}

static int
s_take_root(const flame_node_t *node, int depth, void *arg)
{
    (void)depth;
    *(const flame_node_t **)arg = node;
    return 1; /* the first node visited is the root: stop there */
}

char *
render_flame_svg(const flame_t *tree, const char *title, int value_is_time,
                 size_t *len)
{
    char *result = NULL;
    s_buf_t buf = { 0 };
    s_layout_t lay = { 0 };
    const flame_node_t *root = NULL;

    if (len)
        *len = 0;
    if (!tree)
        goto cleanup;
    /* flame_visit hands out the root first; flame_root() wants a
     * mutable tree and we only read. */
    flame_visit(tree, s_take_root, &root);
    if (!root)
        goto cleanup;

    /* Time is the honest width when we have it; a tree with counts but
     * no time (e.g. some replays) still draws by count. */
    lay.by_time = value_is_time && root->total_ns > 0;
    uint64_t total = s_value(&lay, root);
    if (s_layout(&lay, root) != 0)
        goto cleanup;

    uint64_t graph_bottom =
        S_TOP + (uint64_t)(lay.max_depth + 1) * S_FRAME_H;
    uint64_t height = graph_bottom + S_BOTTOM;

    s_buf_printf(&buf,
                 "<?xml version=\"1.0\" encoding=\"UTF-8\" "
                 "standalone=\"no\"?>\n"
                 "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" "
                 "width=\"%d\" height=\"%llu\" viewBox=\"0 0 %d %llu\" "
                 "data-cw=\"",
                 S_WIDTH, (unsigned long long)height, S_WIDTH,
                 (unsigned long long)height);
    s_buf_fixed2(&buf, S_CHAR_W100);
    s_buf_puts(&buf, "\">\n");
    s_buf_puts(&buf, s_style);
    s_buf_puts(&buf, s_script);
    s_buf_puts(&buf, "<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" "
                     "fill=\"#fbfbf8\"/>\n");
    s_buf_printf(&buf, "<text id=\"title\" x=\"%d\" y=\"22\">",
                 S_WIDTH / 2);
    s_buf_escape(&buf, title && *title ? title : root->name, 200);
    s_buf_printf(&buf, "</text>\n<text id=\"subtitle\" x=\"%d\" y=\"40\">",
                 S_WIDTH / 2);
    s_buf_thousands(&buf, root->total_count);
    s_buf_puts(&buf, root->total_count == 1 ? " sample" : " samples");
    if (root->total_ns) {
        s_buf_puts(&buf, ", ");
        s_buf_duration(&buf, root->total_ns);
    }
    s_buf_puts(&buf, lay.by_time ? "; width = time" : "; width = samples");
    if (lay.elided)
        s_buf_printf(&buf, "; %llu frames not drawn (size limit)",
                     (unsigned long long)lay.elided);
    s_buf_puts(&buf, "</text>\n");
    s_buf_printf(&buf,
                 "<text id=\"unzoom\" class=\"btn off\" x=\"%d\" y=\"22\">"
                 "Reset Zoom</text>\n"
                 "<text id=\"search\" class=\"btn\" x=\"%d\" y=\"22\">"
                 "Search</text>\n"
                 "<text id=\"unsearch\" class=\"btn off\" x=\"%d\" y=\"40\">"
                 "Reset Search</text>\n"
                 "<text id=\"matched\" x=\"%d\" y=\"%llu\"> </text>\n"
                 "<text id=\"details\" x=\"%d\" y=\"%llu\"> </text>\n",
                 S_PAD_X, S_WIDTH - S_PAD_X - 50, S_WIDTH - S_PAD_X - 90,
                 S_WIDTH - S_PAD_X, (unsigned long long)(graph_bottom + 18),
                 S_PAD_X, (unsigned long long)(graph_bottom + 18));
    s_emit_legend(&buf, graph_bottom + 38);

    s_buf_puts(&buf, "<g id=\"frames\">\n");
    if (total == 0) {
        /* Nothing sampled: one full-width root so the page still says
         * what it is, and a note instead of an empty canvas. */
        s_buf_printf(&buf, "<g><title>");
        s_buf_escape(&buf, root->name, S_MAX_TITLE_CHARS);
        s_buf_printf(&buf,
                     "\nno samples</title><rect x=\"%d\" y=\"%llu\" "
                     "width=\"%d\" height=\"%d\" fill=\"rgb(200,200,200)\" "
                     "rx=\"2\"/><text x=\"%d\" y=\"%llu\">",
                     S_PAD_X,
                     (unsigned long long)(graph_bottom - S_FRAME_H),
                     S_WIDTH - 2 * S_PAD_X, S_FRAME_H - 1, S_PAD_X + 3,
                     (unsigned long long)(graph_bottom - S_FRAME_H + 11));
        s_buf_escape(&buf, root->name, 100);
        s_buf_puts(&buf, " (no samples)</text></g>\n");
    } else {
        for (size_t i = 0; i < lay.nframes; i++)
            s_emit_frame(&buf, &lay, &lay.frames[i], total, graph_bottom);
    }
    s_buf_puts(&buf, "</g>\n</svg>\n");
    if (buf.failed)
        goto cleanup;

    result = buf.data;
    buf.data = NULL;
    if (len)
        *len = buf.len;
cleanup:
    free(buf.data);
    free(lay.frames);
    free(lay.kids);
    return result;
}
