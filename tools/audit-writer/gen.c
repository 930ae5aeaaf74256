/* Record generators for audit-writer: healthcare-flavoured content (FHIR
 * reads, logins, PHI exports) in each format the agent parses. */
#include "tools/audit-writer/gen.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

static const char *const fmt_names[GEN_NFORMATS] = {"json", "kv", "k8s-audit", "auditd", "fhir"};

int gen_format_parse(const char *name, enum gen_format *out)
{
    for (int i = 0; i < GEN_NFORMATS; i++) {
        if (strcmp(name, fmt_names[i]) == 0) {
            *out = (enum gen_format)i;
            return 0;
        }
    }
    return -1;
}

const char *gen_format_name(enum gen_format f)
{
    return fmt_names[f];
}

void gen_rng_seed(struct gen_rng *r, uint64_t seed)
{
    /* splitmix64 scramble so nearby seeds give unrelated streams */
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    r->s = z ? z : 1;
}

uint64_t gen_rng_next(struct gen_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ULL;
}

static unsigned pick(struct gen_rng *r, unsigned n)
{
    return (unsigned)(gen_rng_next(r) % n);
}

#define PICK(r, arr) (arr[pick(r, sizeof(arr) / sizeof(arr[0]))])

/* Append s as JSON string content (no quotes); Go-style escapes for & < >
 * as encoding/json writes them, so parsers meet \u0026 in real life. */
static void json_esc(struct buf *b, const char *s)
{
    buf_reserve(b, strlen(s) * 6);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            b->p[b->len++] = '\\';
            b->p[b->len++] = (char)*p;
        } else if (*p == '&' || *p == '<' || *p == '>' || *p < 0x20) {
            b->len += (size_t)snprintf(b->p + b->len, 7, "\\u%04x", *p);
        } else {
            b->p[b->len++] = (char)*p;
        }
    }
    b->p[b->len] = '\0';
}

/* Append s as a kv value: bare when it has no space, quote, comma or
 * backslash, else double-quoted with backslash escapes. */
static void kv_val(struct buf *b, const char *s)
{
    if (!strpbrk(s, " \",\\=")) {
        buf_addf(b, "%s", s);
        return;
    }
    buf_reserve(b, strlen(s) * 2 + 2);
    b->p[b->len++] = '"';
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            b->p[b->len++] = '\\';
        b->p[b->len++] = *p;
    }
    b->p[b->len++] = '"';
    b->p[b->len] = '\0';
}

static const char *const tenants[] = {"clinic-a",         "clinic-b", "st-marys",
                                      "northwind-health", "lab-west", "pharmacy-12"};
static const char *const humans[] = {"dr.alice.chen", "nurse.bob.ortiz", "dr.carol.diaz",
                                     "admin.dave",    "reception.erin",  "dr.frank.ng",
                                     "Zoë Åström",    "Dr. Grace O'Hara"};
static const char *const services[] = {"svc-ehr-sync", "svc-billing", "svc-fhir-gateway",
                                       "svc-nightly-export"};
static const char *const actions[] = {
    "patient.read", "patient.read",   "patient.read", "patient.search", "patient.update",
    "login",        "login",          "logout",       "login.failed",   "phi.export",
    "record.print", "consent.update", "order.create", "break_glass"};
static const char *const rtypes[] = {"Patient",   "Patient",           "Observation",
                                     "Encounter", "DocumentReference", "MedicationRequest",
                                     "Consent"};
static const char *const outcomes[] = {"success", "success", "success", "success",
                                       "success", "success", "failure", "denied"};

struct event {
    const char *tenant, *actor, *action, *outcome;
    char resource[160];
    char ip[32];
};

static void make_event(struct gen_rng *r, struct event *e)
{
    e->tenant = PICK(r, tenants);
    e->actor = pick(r, 5) == 0 ? PICK(r, services) : PICK(r, humans);
    e->action = PICK(r, actions);
    e->outcome = strcmp(e->action, "login.failed") == 0 ? "failure" : PICK(r, outcomes);
    unsigned id = 1000 + pick(r, 900000);
    if (strcmp(e->action, "patient.search") == 0)
        snprintf(e->resource, sizeof(e->resource), "/fhir/Patient?family=smith&birthdate=ge19%02u",
                 pick(r, 100));
    else if (strcmp(e->action, "phi.export") == 0)
        snprintf(e->resource, sizeof(e->resource), "exports/%s/cohort-%u.ndjson", e->tenant,
                 pick(r, 50));
    else if (strncmp(e->action, "log", 3) == 0)
        snprintf(e->resource, sizeof(e->resource), "session/%08x", (unsigned)gen_rng_next(r));
    else
        snprintf(e->resource, sizeof(e->resource), "%s/%u", PICK(r, rtypes), id);
    snprintf(e->ip, sizeof(e->ip), "10.%u.%u.%u", pick(r, 256), pick(r, 256), 1 + pick(r, 254));
}

/* RFC 3339 with µs and 'Z', or with a local offset (FHIR writers do that). */
static void fmt_time(int64_t us, int off_min, char *out, size_t cap)
{
    time_t s = (time_t)(us / 1000000) + off_min * 60;
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    if (off_min == 0)
        snprintf(out + n, cap - n, ".%06ldZ", (long)(us % 1000000));
    else
        snprintf(out + n, cap - n, ".%03ld%c%02d:%02d", (long)(us % 1000000 / 1000),
                 off_min < 0 ? '-' : '+', abs(off_min) / 60, abs(off_min) % 60);
}

/* Padding text: words, so a kv/auditd value needs no quoting. */
static size_t pad_len(const struct gen_opts *o, size_t have)
{
    return o->line_bytes > have + 16 ? o->line_bytes - have - 16 : 0;
}

static void pad_text(struct buf *b, struct gen_rng *r, size_t n)
{
    buf_reserve(b, n);
    for (size_t i = 0; i < n; i++)
        b->p[b->len++] = (char)('a' + pick(r, 26));
    b->p[b->len] = '\0';
}

static void gen_json(struct gen_rng *r, uint64_t n, int64_t now, const struct gen_opts *o,
                     struct buf *b)
{
    struct event e;
    make_event(r, &e);
    char t[48];
    bool no_ts = o->no_ts_ratio > 0 && (double)pick(r, 1000000) < o->no_ts_ratio * 1e6;
    buf_addf(b, "{");
    if (!no_ts) {
        fmt_time(now, 0, t, sizeof(t));
        buf_addf(b, "\"ts\":\"%s\",", t);
    }
    buf_addf(b, "\"level\":\"info\",\"tenant\":\"%s\",\"actor\":\"", e.tenant);
    json_esc(b, e.actor);
    buf_addf(b, "\",\"action\":\"%s\",\"resource\":\"", e.action);
    json_esc(b, e.resource);
    buf_addf(b,
             "\",\"outcome\":\"%s\",\"client\":{\"ip\":\"%s\",\"app\":\"ehr-web/4.2\"},\"n\":%llu",
             e.outcome, e.ip, (unsigned long long)n);
    size_t p = pad_len(o, b->len);
    if (p) {
        buf_addf(b, ",\"pad\":\"");
        pad_text(b, r, p);
        buf_addf(b, "\"");
    }
    buf_addf(b, "}\n");
}

static void gen_kv(struct gen_rng *r, uint64_t n, int64_t now, const struct gen_opts *o,
                   struct buf *b)
{
    struct event e;
    make_event(r, &e);
    char t[48];
    fmt_time(now, 0, t, sizeof(t));
    if (pick(r, 2)) { /* the "YYYY-MM-DD HH:MM:SS.fff" spelling, read as UTC */
        t[10] = ' ';
        t[23] = '\0';
    }
    buf_addf(b, "%s tenant=%s actor=", t, e.tenant);
    kv_val(b, e.actor);
    buf_addf(b, " action=%s resource=", e.action);
    kv_val(b, e.resource);
    buf_addf(b, " outcome=%s src_ip=%s", e.outcome, e.ip);
    if (strcmp(e.outcome, "success") != 0)
        buf_addf(b, " reason=\"policy \\\"%s\\\" denied, see ticket\"", e.tenant);
    buf_addf(b, " n=%llu", (unsigned long long)n);
    size_t p = pad_len(o, b->len);
    if (p) {
        buf_addf(b, " pad=");
        pad_text(b, r, p);
    }
    buf_addf(b, "\n");
}

static void gen_k8s(struct gen_rng *r, uint64_t n, int64_t now, const struct gen_opts *o,
                    struct buf *b)
{
    static const char *const verbs[] = {"get",    "get",   "list",   "watch",
                                        "create", "patch", "update", "delete"};
    static const struct {
        const char *res, *group;
    } kinds[] = {{"secrets", ""},         {"configmaps", ""}, {"pods", ""},
                 {"deployments", "apps"}, {"jobs", "batch"},  {"serviceaccounts", ""}};
    static const int codes[] = {200, 200, 200, 200, 201, 403, 404, 409};
    unsigned k = pick(r, sizeof(kinds) / sizeof(kinds[0]));
    const char *verb = PICK(r, verbs), *ns = PICK(r, tenants);
    int code = PICK(r, codes);
    char user[128], name[64], t1[48], t2[48];
    if (pick(r, 2))
        snprintf(user, sizeof(user), "system:serviceaccount:%s:%s", ns, PICK(r, services));
    else
        snprintf(user, sizeof(user), "%s@hospital.example", PICK(r, humans));
    snprintf(name, sizeof(name), "%s-%04x", PICK(r, services) + 4, pick(r, 65536));
    fmt_time(now - 3000 - pick(r, 2000), 0, t1, sizeof(t1));
    fmt_time(now, 0, t2, sizeof(t2));
    uint64_t a = gen_rng_next(r), c = gen_rng_next(r);
    buf_addf(
        b,
        "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"Metadata\","
        "\"auditID\":\"%08x-%04x-4%03x-8%03x-%012llx\",\"stage\":\"ResponseComplete\","
        "\"requestURI\":\"/%s%s/v1/namespaces/%s/%s/%s\",\"verb\":\"%s\",\"user\":{\"username\":\"",
        (unsigned)a, (unsigned)(a >> 32) & 0xffff, (unsigned)(a >> 48) & 0xfff, (unsigned)c & 0xfff,
        (unsigned long long)(c >> 16), *kinds[k].group ? "apis/" : "api", kinds[k].group, ns,
        kinds[k].res, name, verb);
    json_esc(b, user);
    buf_addf(b,
             "\",\"groups\":[\"system:authenticated\"]},\"sourceIPs\":[\"10.244.%u.%u\"],"
             "\"userAgent\":\"kubectl/v1.28.3 (linux/amd64) kubernetes/a8a1abc\","
             "\"objectRef\":{\"resource\":\"%s\",\"namespace\":\"%s\",\"name\":\"%s\",",
             pick(r, 8), 2 + pick(r, 250), kinds[k].res, ns, name);
    if (*kinds[k].group)
        buf_addf(b, "\"apiGroup\":\"%s\",", kinds[k].group);
    buf_addf(b,
             "\"apiVersion\":\"v1\"},\"responseStatus\":{\"metadata\":{},\"code\":%d},"
             "\"requestReceivedTimestamp\":\"%s\",\"stageTimestamp\":\"%s\","
             "\"annotations\":{\"authorization.k8s.io/decision\":\"%s\"},\"n\":%llu",
             code, t1, t2, code == 403 ? "forbid" : "allow", (unsigned long long)n);
    size_t p = pad_len(o, b->len);
    if (p) {
        buf_addf(b, ",\"pad\":\"");
        pad_text(b, r, p);
        buf_addf(b, "\"");
    }
    buf_addf(b, "}\n");
}

static void hex_append(struct buf *b, const char *s, size_t n)
{
    buf_reserve(b, n * 2);
    for (size_t i = 0; i < n; i++)
        b->len += (size_t)snprintf(b->p + b->len, 3, "%02X", (unsigned char)s[i]);
}

static void gen_auditd(struct gen_rng *r, uint64_t n, int64_t now, const struct gen_opts *o,
                       struct buf *b)
{
    static const char *const users[] = {"alice", "bob", "carol", "dave", "postgres"};
    static const char *const files[] = {"/srv/ehr/exports/patients.csv", "/var/lib/pgsql/phi.db",
                                        "/etc/ehr/secrets.yaml", "/srv/ehr/imaging/ct-0042.dcm"};
    static const char *const sys[] = {"openat", "unlinkat", "renameat2", "execve"};
    static const unsigned sysno[] = {257, 263, 316, 59};
    unsigned uid = 1000 + pick(r, 5);
    const char *user = users[uid - 1000];
    char node[64] = "";
    if (pick(r, 2))
        snprintf(node, sizeof(node), "node=db-%02u.%s.example ", pick(r, 4), PICK(r, tenants));
    buf_addf(b, "%s", node);
    unsigned kind = pick(r, 4);
    long long sec = (long long)(now / 1000000), ms = (long long)(now / 1000 % 1000);
    if (kind == 0) { /* sshd/pam login, user-space record with msg='...' */
        bool ok = pick(r, 4) != 0;
        buf_addf(b,
                 "type=USER_LOGIN msg=audit(%lld.%03lld:%llu): pid=%u uid=0 auid=%s ses=%s "
                 "subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg='op=login acct=\"%s\" "
                 "exe=\"/usr/sbin/sshd\" hostname=? addr=198.51.100.%u terminal=ssh res=%s' n=%llu",
                 sec, ms, (unsigned long long)n, 2000 + pick(r, 30000), ok ? "1001" : "4294967295",
                 ok ? "7" : "4294967295", user, 1 + pick(r, 254), ok ? "success" : "failed",
                 (unsigned long long)n);
    } else if (kind == 1) { /* proctitle, hex-encoded with NUL separators */
        char cmd[128];
        int cl = snprintf(cmd, sizeof(cmd), "psql%c-c%cselect * from patients where id=%u", 0, 0,
                          pick(r, 100000));
        buf_addf(b, "type=PROCTITLE msg=audit(%lld.%03lld:%llu): proctitle=", sec, ms,
                 (unsigned long long)n);
        hex_append(b, cmd, (size_t)cl);
        buf_addf(b, " n=%llu", (unsigned long long)n);
    } else if (kind == 2) { /* PATH record: the file touched */
        buf_addf(b,
                 "type=PATH msg=audit(%lld.%03lld:%llu): item=0 name=\"%s\" inode=%u dev=fd:01 "
                 "mode=0100640 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL n=%llu",
                 sec, ms, (unsigned long long)n, PICK(r, files), 390000 + pick(r, 10000),
                 (unsigned long long)n);
    } else {
        unsigned s = pick(r, sizeof(sys) / sizeof(sys[0]));
        bool ok = pick(r, 5) != 0;
        buf_addf(b,
                 "type=SYSCALL msg=audit(%lld.%03lld:%llu): arch=c000003e syscall=%u success=%s "
                 "exit=%d a0=ffffff9c a1=7ffd5c1e2a10 a2=0 a3=0 items=1 ppid=%u pid=%u auid=%u "
                 "uid=%u gid=%u euid=%u tty=pts%u ses=%u comm=\"cat\" exe=\"/usr/bin/cat\" "
                 "key=\"phi-access\" n=%llu",
                 sec, ms, (unsigned long long)n, sysno[s], ok ? "yes" : "no", ok ? 3 : -13,
                 1000 + pick(r, 9000), 10000 + pick(r, 20000), uid, uid, uid, uid, pick(r, 4),
                 pick(r, 50), (unsigned long long)n);
        size_t p = pad_len(o, b->len + 60);
        if (p) {
            buf_addf(b, " pad=");
            pad_text(b, r, p);
        }
        /* log_format=ENRICHED: translated names after a 0x1d separator */
        buf_addf(b,
                 "\x1d"
                 "AUID=\"%s\" UID=\"%s\" SYSCALL=%s\n",
                 user, user, sys[s]);
        return;
    }
    size_t p = pad_len(o, b->len);
    if (p) {
        buf_addf(b, " pad=");
        pad_text(b, r, p);
    }
    buf_addf(b, "\n");
}

static void gen_fhir(struct gen_rng *r, uint64_t n, int64_t now, const struct gen_opts *o,
                     struct buf *b)
{
    static const int offsets[] = {0, 60, -300, 330};
    struct event e;
    make_event(r, &e);
    char t[48];
    fmt_time(now, PICK(r, offsets), t, sizeof(t));
    bool login = strncmp(e.action, "log", 3) == 0;
    const char *act = strstr(e.action, "update")   ? "U"
                      : strstr(e.action, "create") ? "C"
                      : strstr(e.action, "export") ? "E"
                                                   : "R";
    const char *out = strcmp(e.outcome, "success") == 0  ? "0"
                      : strcmp(e.outcome, "denied") == 0 ? "8"
                                                         : "4";
    buf_addf(b, "{\"resourceType\":\"AuditEvent\",\"id\":\"ae-%llu\",", (unsigned long long)n);
    if (login)
        buf_addf(b, "\"type\":{\"system\":\"http://dicom.nema.org/resources/ontology/DCM\","
                    "\"code\":\"110114\",\"display\":\"User Authentication\"},");
    else
        buf_addf(b,
                 "\"type\":{\"system\":\"http://terminology.hl7.org/CodeSystem/audit-event-type\","
                 "\"code\":\"rest\",\"display\":\"RESTful Operation\"},\"action\":\"%s\",",
                 act);
    buf_addf(b, "\"recorded\":\"%s\",\"outcome\":\"%s\",", t, out);
    if (*out != '0')
        buf_addf(b, "\"outcomeDesc\":\"%s\",", e.outcome);
    buf_addf(b, "\"agent\":[{\"type\":{\"coding\":[{\"code\":\"humanuser\"}]},\"who\":{"
                "\"identifier\":{\"system\":\"urn:oid:2.16.840.1.113883.4.6\",\"value\":\"");
    json_esc(b, e.actor);
    buf_addf(b, "\"},\"display\":\"");
    json_esc(b, e.actor);
    buf_addf(b,
             "\"},\"requestor\":true,\"network\":{\"address\":\"%s\",\"type\":\"2\"}}],"
             "\"source\":{\"site\":\"%s\",\"observer\":{\"reference\":\"Device/ehr-%02u\"}},"
             "\"entity\":[{\"what\":{\"reference\":\"",
             e.ip, e.tenant, pick(r, 8));
    json_esc(b, e.resource);
    buf_addf(b, "\"},\"type\":{\"code\":\"%s\"}", login ? "2" : "1");
    size_t p = pad_len(o, b->len + 40);
    if (p) {
        buf_addf(b, ",\"detail\":[{\"type\":\"note\",\"valueString\":\"");
        pad_text(b, r, p);
        buf_addf(b, "\"}]");
    }
    buf_addf(b, "}],\"n\":%llu}\n", (unsigned long long)n);
}

void gen_record(enum gen_format f, struct gen_rng *r, uint64_t n, int64_t now_us,
                const struct gen_opts *o, struct buf *b)
{
    b->len = 0;
    buf_reserve(b, 512);
    switch (f) {
    case GEN_JSON:
        gen_json(r, n, now_us, o, b);
        break;
    case GEN_KV:
        gen_kv(r, n, now_us, o, b);
        break;
    case GEN_K8S:
        gen_k8s(r, n, now_us, o, b);
        break;
    case GEN_AUDITD:
        gen_auditd(r, n, now_us, o, b);
        break;
    default:
        gen_fhir(r, n, now_us, o, b);
        break;
    }
}
