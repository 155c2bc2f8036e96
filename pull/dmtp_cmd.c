/* dmtp_cmd — see dmtp_cmd.h. */
#include "pull/dmtp_cmd.h"
#include "lib/buf.h"

#include <stdio.h>
#include <string.h>

const char *const dmtp_ehlo_keywords[] = { "MSID", "GTML", NULL };

static const struct dmtp_reply replies[DMTP_R_COUNT] = {
    [DMTP_R_DENIED] = { 550, "5.7.1", "DENIED: no mail from this host; only GTML is served to it" },
    [DMTP_R_DENIED_GREETING] = { 554, "5.7.1", "DENIED: no SMTP service for this host" },
    [DMTP_R_QUIT_ONLY] = { 503, "5.5.1", "bad sequence of commands: only QUIT after a 554 greeting" },
    [DMTP_R_MSID_OK] = { 250, "2.0.0", "MSID accepted, the recipients will be told" },
    [DMTP_R_MSID_NO_RCPT] = { 503, "5.5.1", "MSID needs an accepted RCPT first" },
    [DMTP_R_DATA_REFUSED] = { 503, "5.5.1", "DATA not accepted from this sender, use MSID" },
    [DMTP_R_GTML_OK] = { 250, "2.0.0", "message follows" },
    [DMTP_R_GTML_REFUSED] = { 550, "5.7.1", "no such message for you" },
    [DMTP_R_GTML_TEMP] = { 451, "4.3.0", "cannot read the message now, try later" },
    [DMTP_R_GTML_RATE] = { 450, "4.7.0", "too many pulls, try later" },
    [DMTP_R_GTML_SEQUENCE] = { 503, "5.5.1", "GTML not allowed inside a transaction" },
    [DMTP_R_LEGACY_REJECT] = { 550, "5.7.1", "unclassified sender: this server accepts only DMTP (MSID) from you" },
    [DMTP_R_GREYLISTED] = { 451, "4.7.1", "greylisted, try again later" },
    [DMTP_R_USER_DENIED] = { 550, "5.7.1", "the recipient does not accept mail from this sender" },
    [DMTP_R_PEER_UNREADABLE] = { 451, "4.3.0",
                                 "cannot classify your host now (local database error), try again later" },
    [DMTP_R_USER_UNREADABLE] = { 451, "4.3.0",
                                 "cannot read the recipient's sender lists now (local database error), try again later" },
};

static const struct dmtp_reply r_syntax = { 501, "5.5.4", "syntax: MSID id [subject] or GTML id receiver" };
static const struct dmtp_reply r_too_long = { 500, "5.5.6", "line too long" };
static const struct dmtp_reply r_bad_msid = { 501, "5.5.4", "bad message id" };
static const struct dmtp_reply r_dmtp_value = { 501, "5.5.4", "DMTP takes no value" };

const struct dmtp_reply *dmtp_reply(enum dmtp_reply_id id)
{
    return (unsigned)id < DMTP_R_COUNT ? &replies[id] : &replies[DMTP_R_GTML_TEMP];
}

int dmtp_reply_format(const struct dmtp_reply *r, char *out, size_t outsz)
{
    int n = snprintf(out, outsz, "%d %s %s\r\n", r->code, r->enhanced, r->text);
    return n < 0 || (size_t)n >= outsz ? -1 : n;
}

static bool msid_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '<' && c != '>' && c != '"';
}

bool dmtp_msid_valid(const char *s, size_t len)
{
    if (len == 0 || len > DMTP_MSID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!msid_char((unsigned char)s[i]))
            return false;
    return true;
}

/* The verb and its separator: 5 octets for "MSID " / "MSID:" */
enum dmtp_verb dmtp_cmd_verb(const char *line, size_t len)
{
    if (len < 5 || (line[4] != ' ' && line[4] != ':'))
        return DMTP_VERB_NONE;
    if (str_nieq(line, "MSID", 4))
        return DMTP_VERB_MSID;
    if (str_nieq(line, "GTML", 4))
        return DMTP_VERB_GTML;
    return DMTP_VERB_NONE;
}

/* Length of a valid UTF-8 character at p (at most n octets), 0 when invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t want = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc0 ? 2 : 0;
    if (want == 0 || want > n || !addr_utf8_valid((const char *)p, want))
        return 0;
    return want;
}

size_t dmtp_subject_clean(const char *in, size_t len, bool ascii_only, char *out, size_t outsz)
{
    if (outsz == 0)
        return 0;
    size_t cap = outsz - 1 < DMTP_SUBJECT_MAX ? outsz - 1 : DMTP_SUBJECT_MAX;
    size_t o = 0;
    bool blank = true;      /* drops leading blanks and collapses runs */
    const unsigned char *p = (const unsigned char *)in;
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        if (c < 0x20 || c == 0x7f || c == ' ') {
            i++;
            if (!blank && o < cap)
                out[o++] = ' ';
            blank = true;
            continue;
        }
        size_t n = c < 0x80 ? 1 : utf8_len(p + i, len - i);
        if (c >= 0x80 && (n == 0 || ascii_only)) {
            i += n ? n : 1;
            if (o == cap)
                break;
            out[o++] = '?';
        } else {
            if (o + n > cap)
                break;
            memcpy(out + o, p + i, n);
            o += n;
            i += n;
        }
        blank = false;
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
    return o;
}

static const char *skip_sp(const char *p, const char *end)
{
    while (p < end && *p == ' ')
        p++;
    return p;
}

int dmtp_cmd_parse(const char *line, size_t len, bool utf8_ok, struct dmtp_cmd *out, struct dmtp_reply *err)
{
    memset(out, 0, sizeof *out);
    if (len > DMTP_LINE_MAX - 2) {
        *err = r_too_long;
        return -1;
    }
    if (memchr(line, '\0', len) || memchr(line, '\r', len) || memchr(line, '\n', len)) {
        *err = r_syntax;
        return -1;
    }
    out->verb = dmtp_cmd_verb(line, len);
    if (out->verb == DMTP_VERB_NONE) {
        *err = r_syntax;
        return -1;
    }
    out->draft00 = line[4] == ':';
    const char *end = line + len;
    /* -03: one or more SP; -00: the colon, tolerating blanks after it */
    const char *p = skip_sp(line + 5, end);
    const char *id = p;
    while (p < end && *p != ' ')
        p++;
    if (!dmtp_msid_valid(id, (size_t)(p - id))) {
        *err = p == id ? r_syntax : r_bad_msid;
        return -1;
    }
    memcpy(out->msid, id, (size_t)(p - id));
    if (out->verb == DMTP_VERB_MSID) {
        if (p < end)
            p++;        /* the one SP before the subject */
        dmtp_subject_clean(p, (size_t)(end - p), false, out->subject, sizeof out->subject);
        return 0;
    }
    p = skip_sp(p, end);
    while (end > p && end[-1] == ' ')
        end--;
    const char *why;
    if (p < end && *p == '<') {
        size_t used;
        bool is_null;
        if (addr_parse_path(p, (size_t)(end - p), utf8_ok, false, false, &used, &is_null, &out->receiver, &why) < 0 ||
            used != (size_t)(end - p)) {
            *err = r_syntax;
            return -1;
        }
    } else if (p == end || addr_parse_mailbox(p, (size_t)(end - p), utf8_ok, &out->receiver, &why) < 0) {
        *err = r_syntax;
        return -1;
    }
    if (addr_format(&out->receiver, out->receiver_text, sizeof out->receiver_text) < 0) {
        *err = r_syntax;
        return -1;
    }
    return 0;
}

int dmtp_mail_param(const char *key, const char *value, struct dmtp_reply *err)
{
    if (!str_ieq(key, "DMTP"))
        return 0;
    if (value) {
        *err = r_dmtp_value;
        return -1;
    }
    return 1;
}

int dmtp_format_msid(char *out, size_t outsz, const char *msid, const char *subject, bool ascii_only)
{
    char subj[DMTP_SUBJECT_MAX + 1];
    if (!dmtp_msid_valid(msid, strlen(msid)))
        return -1;
    size_t sl = subject ? dmtp_subject_clean(subject, strlen(subject), ascii_only, subj, sizeof subj) : 0;
    int n = snprintf(out, outsz, "MSID %s%s%s\r\n", msid, sl ? " " : "", sl ? subj : "");
    if (n < 0 || (size_t)n >= outsz || n > DMTP_LINE_MAX)
        return -1;
    return n;
}

int dmtp_format_gtml(char *out, size_t outsz, const char *msid, const char *receiver)
{
    struct mailbox m;
    const char *why;
    if (!dmtp_msid_valid(msid, strlen(msid)) ||
        addr_parse_mailbox(receiver, strlen(receiver), true, &m, &why) < 0)
        return -1;
    int n = snprintf(out, outsz, "GTML %s %s\r\n", msid, receiver);
    if (n < 0 || (size_t)n >= outsz || n > DMTP_LINE_MAX)
        return -1;
    return n;
}

bool dmtp_ehlo_line_offers_msid(const char *text, size_t len)
{
    /* the keyword is the first word of the line */
    return len >= 4 && str_nieq(text, "MSID", 4) && (len == 4 || text[4] == ' ');
}

bool dmtp_reply_wants_msid(int code)
{
    return code == 253;
}
