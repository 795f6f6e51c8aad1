/*
** Shared helpers of the nub command line.
*/
#include "cli.h"

#include "nub/jit.h"
#include "nub/nub.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int cli_read_file(const char *path, uint8_t **data, size_t *len) {
  return cli_read_file_max(path, CLI_MAX_FILE_BYTES, "", data, len);
}

/* what: "is N bytes" or "holds more than N bytes" */
static int too_large(const char *path, const char *what, size_t max, const char *hint) {
  char mib[32] = "";
  if (max >= (1u << 20)) snprintf(mib, sizeof mib, " (%zu MiB)", max >> 20);
  fprintf(stderr, "nub: %s %s, over the limit of %zu bytes%s%s\n", path, what, max, mib, hint);
  return -1;
}

int cli_read_file_max(const char *path, size_t max, const char *hint, uint8_t **data,
                      size_t *len) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf = NULL;
  size_t n = 0, cap = 65536;
  struct stat st;
  char what[64];
  if (!f) {
    fprintf(stderr, "nub: cannot open %s: %s\n", path, strerror(errno));
    return -1;
  }
  /* a regular file says its size: refuse before reading, read in one go */
  if (!fstat(fileno(f), &st) && S_ISREG(st.st_mode)) {
    if ((uint64_t)st.st_size > max) {
      fclose(f);
      snprintf(what, sizeof what, "is %llu bytes", (unsigned long long)st.st_size);
      return too_large(path, what, max, hint);
    }
    cap = (size_t)st.st_size + 1;      /* + 1: the read that sees the end */
  }
  if (!(buf = malloc(cap))) {
    fclose(f);
    fprintf(stderr, "nub: %s: out of memory\n", path);
    return -1;
  }
  for (;;) {
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
    if (n > max) {                     /* a pipe or device: stops at max + 1 */
      free(buf);
      fclose(f);
      snprintf(what, sizeof what, "holds more than %zu bytes", max);
      return too_large(path, what, max, hint);
    }
    if (n == cap) {
      size_t ncap = cap > max / 2 ? max + 1 : cap * 2;
      uint8_t *nb = realloc(buf, ncap);
      if (!nb) { free(buf); fclose(f); fprintf(stderr, "nub: %s: out of memory\n", path); return -1; }
      buf = nb;
      cap = ncap;
    }
  }
  if (ferror(f)) {
    fprintf(stderr, "nub: cannot read %s: %s\n", path, strerror(errno));
    free(buf);
    fclose(f);
    return -1;
  }
  fclose(f);
  *data = buf;
  *len = n;
  return 0;
}

int cli_write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
    fprintf(stderr, "nub: cannot write %s: %s\n", path, strerror(errno));
    if (f) fclose(f);
    return -1;
  }
  return 0;
}

bool cli_parse_u64(const char *s, uint64_t max, uint64_t *out) {
  char *end;
  if (!s || !*s || *s == '-') return false;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || *end || v > max) return false;
  *out = v;
  return true;
}

bool cli_parse_i64(const char *s, int64_t *out) {
  char *end;
  if (!s || !*s) return false;
  errno = 0;
  long long v = strtoll(s, &end, 0);
  if (errno || *end) return false;
  *out = v;
  return true;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool cli_parse_hex(const char *s, uint8_t **out, size_t *len) {
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s += 2;
  size_t n = strlen(s);
  if (n % 2) return false;
  uint8_t *b = malloc(n / 2 + 1);
  if (!b) return false;
  for (size_t i = 0; i < n / 2; i++) {
    int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
    if (hi < 0 || lo < 0) { free(b); return false; }
    b[i] = (uint8_t)(hi << 4 | lo);
  }
  *out = b;
  *len = n / 2;
  return true;
}

bool cli_profile(const char *cmd, const char *name, nub_pvm_profile *out) {
  int p = nub_pvm_profile_by_name(name);
  if (p < 0) {
    char known[128] = "";
    for (int k = 0; k < PVM_PROFILE_COUNT; k++) {
      size_t n = strlen(known);
      snprintf(known + n, sizeof known - n, "%s%s", k ? ", " : "", nub_pvm_profile_name((nub_pvm_profile)k));
    }
    cli_usage_error(cmd, "unknown profile '%s' (known: %s)", name, known);
    return false;
  }
  *out = (nub_pvm_profile)p;
  return true;
}

const nub_pvm_engine *cli_engine(const char *name) {
  const nub_pvm_engine *e = nub_engine_by_name(name);
  if (e) return e;
  fprintf(stderr, "nub: unknown engine '%s' (have: interp, jit)\n", name);
  return NULL;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "nub %s: ", cmd);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return 2;
}

/* ---- options as data ---- */

bool cli_is_help(const char *arg) { return !strcmp(arg, "-h") || !strcmp(arg, "--help"); }

static int opt_index(const cli_spec *s, const char *name) {
  for (int i = 0; s->opts && s->opts[i].name; i++)
    if (!strcmp(s->opts[i].name, name)) return i;
  return -1;
}

/* A metavar of lower-case words and digits separated by '|' lists the
** allowed values. */
static bool is_choice(const char *metavar) {
  if (!metavar || !strchr(metavar, '|')) return false;
  for (const char *p = metavar; *p; p++)
    if (!(*p == '|' || *p == '-' || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))) return false;
  return true;
}

static int choice_index(const char *metavar, const char *v) {
  size_t n = strlen(v);
  int i = 0;
  for (const char *p = metavar;; i++) {
    const char *bar = strchr(p, '|');
    size_t len = bar ? (size_t)(bar - p) : strlen(p);
    if (len == n && !strncmp(p, v, n)) return i;
    if (!bar) return -1;
    p = bar + 1;
  }
}

/* "a, b or c" from "a|b|c" */
static void choice_list(const char *metavar, char *out, size_t cap) {
  size_t n = 0;
  int words = 1;
  for (const char *p = metavar; *p; p++) words += *p == '|';
  for (int w = 0; *metavar && n + 8 < cap; metavar++) {
    if (*metavar == '|') {
      w++;
      n += (size_t)snprintf(out + n, cap - n, "%s", w == words - 1 ? " or " : ", ");
    } else {
      out[n++] = *metavar;
    }
  }
  out[n < cap ? n : cap - 1] = 0;
}

static int set_value(const cli_spec *s, cli_args *a, int k, const char *v) {
  const cli_opt *o = &s->opts[k];
  if (is_choice(o->metavar) && choice_index(o->metavar, v) < 0) {
    char list[256];
    choice_list(o->metavar, list, sizeof list);
    return cli_usage_error(s->name, "--%s must be %s, not '%s'", o->name, list, v);
  }
  a->val[k] = v;
  a->given[k] = true;
  return 0;
}

int cli_parse(const cli_spec *s, int argc, char **argv, cli_args *a) {
  bool opts_done = false;
  memset(a, 0, sizeof *a);
  a->spec = s;
  a->pos = argv + 1;
  for (int k = 0; s->opts && s->opts[k].name; k++) a->val[k] = s->opts[k].def;
  for (int i = 1; i < argc; i++) {
    char *arg = argv[i], name[64];
    const char *eq = NULL;
    int k = -1;
    if (opts_done || arg[0] != '-' || !arg[1]) {       /* "-" alone is a positional */
      if ((unsigned)a->npos >= s->max_pos)
        return cli_usage_error(s->name, "unexpected argument %s (usage: nub %s %s [options])", arg,
                               s->name, s->args);
      a->pos[a->npos++] = arg;                          /* npos < i: never overtakes i */
      continue;
    }
    if (!strcmp(arg, "--")) { opts_done = true; continue; }
    if (cli_is_help(arg)) { cli_help(s, stdout); return CLI_HELP; }
    if (arg[1] == '-') {
      size_t n;
      eq = strchr(arg, '=');
      n = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
      if (n < sizeof name) {
        memcpy(name, arg + 2, n);
        name[n] = 0;
        k = opt_index(s, name);
      }
    } else if (!arg[2]) {
      for (int j = 0; s->opts && s->opts[j].name; j++)
        if (s->opts[j].alias == arg[1]) k = j;
    }
    if (k < 0)
      return cli_usage_error(s->name, "unknown option %.*s (see nub %s --help)",
                             eq ? (int)(eq - arg) : (int)strlen(arg), arg, s->name);
    const cli_opt *o = &s->opts[k];
    if (!o->metavar) {
      if (eq) return cli_usage_error(s->name, "--%s takes no value", o->name);
      a->val[k] = "1";
      a->given[k] = true;
      continue;
    }
    const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
    if (!v || (eq && !*v)) return cli_usage_error(s->name, "--%s needs a value (%s)", o->name, o->metavar);
    if (set_value(s, a, k, v)) return 2;
  }
  if ((unsigned)a->npos < s->min_pos)
    return cli_usage_error(s->name, "missing %s (usage: nub %s %s [options])", s->args, s->name,
                           s->args);
  return 0;
}

void cli_help(const cli_spec *s, FILE *f) {
  fprintf(f, "usage: nub %s%s%s%s\n%s\n", s->name, s->args && *s->args ? " " : "",
          s->args ? s->args : "", s->opts && s->opts[0].name ? " [options]" : "", s->summary);
  fprintf(f, "\noptions:\n");
  for (int k = 0; s->opts && s->opts[k].name; k++) {
    const cli_opt *o = &s->opts[k];
    char left[96];
    snprintf(left, sizeof left, "%c%c%s--%s%s%s", o->alias ? '-' : ' ', o->alias ? o->alias : ' ',
             o->alias ? ", " : "  ", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
    if (strlen(left) > 30) fprintf(f, "  %s\n  %-30s %s", left, "", o->help);
    else fprintf(f, "  %-30s %s", left, o->help);
    if (o->def) fprintf(f, " (default: %s)", o->def);
    fputc('\n', f);
  }
  fprintf(f, "  %-30s %s\n", "-h, --help", "print this help");
  if (s->details) fprintf(f, "\n%s\n", s->details);
}

const char *cli_get(const cli_args *a, const char *name) {
  int k = opt_index(a->spec, name);
  return k < 0 ? NULL : a->val[k];
}

bool cli_flag(const cli_args *a, const char *name) { return cli_given(a, name); }

bool cli_given(const cli_args *a, const char *name) {
  int k = opt_index(a->spec, name);
  return k >= 0 && a->given[k];
}

int cli_choice(const cli_args *a, const char *name) {
  int k = opt_index(a->spec, name);
  if (k < 0 || !a->val[k]) return -1;
  return choice_index(a->spec->opts[k].metavar, a->val[k]);
}

int cli_get_u64(const cli_args *a, const char *name, uint64_t min, uint64_t max, uint64_t *out) {
  const char *v = cli_get(a, name);
  uint64_t x;
  if (!v) return 0;
  if (!cli_parse_u64(v, max, &x) || x < min)
    return cli_usage_error(a->spec->name, "--%s must be %llu..%llu, not %s", name,
                           (unsigned long long)min, (unsigned long long)max, v);
  *out = x;
  return 0;
}

/* ---- programs ---- */

void cli_pvm_error(const char *cmd, const char *path, const nub_pvm_error *err) {
  fprintf(stderr, "nub %s: %s: %s (%s", cmd, path, err->msg, nub_pvm_errcode_name(err->code));
  if (!strstr(err->msg, "offset")) fprintf(stderr, ", offset %llu", (unsigned long long)err->offset);
  fprintf(stderr, ")\n");
}

/* Printable text with a newline in its first 4 KiB: assembler source, not
** program bytes. */
static bool looks_like_text(const uint8_t *p, size_t len) {
  bool newline = false;
  for (size_t i = 0; i < len && i < 4096; i++) {
    if (p[i] == '\n') newline = true;
    else if (p[i] != '\t' && p[i] != '\r' && (p[i] < 0x20 || p[i] > 0x7e)) return false;
  }
  return newline;
}

int cli_program_format(const char *cmd, const char *path, const uint8_t *bytes, size_t len,
                       int format, bool *spi) {
  nub_pvm_spi s;
  nub_pvm_blob b;
  nub_pvm_error spi_err, blob_err;
  bool spi_ok, blob_ok;
  if (!len) {
    fprintf(stderr, "nub %s: %s: empty file\n", cmd, path);
    return 1;
  }
  spi_ok = !nub_pvm_spi_parse(bytes, bytes + len, &s, &spi_err);
  blob_ok = !nub_pvm_blob_parse(bytes, bytes + len, &b, &blob_err);
  if (format == CLI_FORMAT_AUTO && (spi_ok || blob_ok)) {
    *spi = spi_ok;                      /* both: the SPI reading (the common container) */
    return 0;
  }
  if ((format == CLI_FORMAT_SPI && spi_ok) || (format == CLI_FORMAT_GENERIC && blob_ok)) {
    *spi = format == CLI_FORMAT_SPI;
    return 0;
  }
  if (looks_like_text(bytes, len)) {
    fprintf(stderr, "nub %s: %s looks like assembler text, not a program: assemble it first "
            "(nub asm %s -o FILE.pvm)\n", cmd, path, path);
    return 1;
  }
  if (format == CLI_FORMAT_AUTO) {
    fprintf(stderr, "nub %s: %s is neither an SPI program (%s) nor a generic blob (%s)\n", cmd,
            path, spi_err.msg, blob_err.msg);
    return 1;
  }
  cli_pvm_error(cmd, path, format == CLI_FORMAT_SPI ? &spi_err : &blob_err);
  if (format == CLI_FORMAT_GENERIC && spi_ok)
    fprintf(stderr, "nub %s: this looks like an SPI program: try --format spi\n", cmd);
  if (format == CLI_FORMAT_SPI && blob_ok)
    fprintf(stderr, "nub %s: this looks like a generic blob: try --format generic\n", cmd);
  return 1;
}

/* --regs, or its older spelling --args (registers on both commands now);
** not both. */
int cli_get_regs(const cli_args *a, const char *cmd, uint64_t regs[4], unsigned *count) {
  bool r = cli_given(a, "regs"), old = cli_given(a, "args");
  if (r && old) return cli_usage_error(cmd, "--args is the older spelling of --regs: give one");
  if (!r && !old) return 0;
  return cli_parse_regs(cmd, cli_get(a, r ? "regs" : "args"), regs, count);
}

int cli_parse_regs(const char *cmd, const char *s, uint64_t regs[4], unsigned *count) {
  unsigned n = 0;
  const char *p = s;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    char tok[32];
    if (n == 4)
      return cli_usage_error(cmd, "--regs %s: more than 4 values (phi7..phi10)", s);
    if (!len) return cli_usage_error(cmd, "--regs %s: value %u is empty", s, n + 1);
    if (len >= sizeof tok) return cli_usage_error(cmd, "--regs %s: value %u is not a u64", s, n + 1);
    memcpy(tok, p, len);
    tok[len] = 0;
    if (!cli_parse_u64(tok, UINT64_MAX, &regs[n]))
      return cli_usage_error(cmd, "--regs %s: value %u ('%s') is not a u64", s, n + 1, tok);
    n++;
    if (!comma) break;
    p = comma + 1;
  }
  *count = n;
  return 0;
}

int cli_parse_data(const char *cmd, const char *s, uint8_t **out, size_t *len) {
  if (!cli_parse_hex(s, out, len))
    return cli_usage_error(cmd, "--data must be hex bytes (an even number of 0-9a-f digits)");
  if (*len > PVM_ARGS_MAX) {
    free(*out);
    *out = NULL;
    return cli_usage_error(cmd, "--data is %zu bytes, over the %u of the argument region (GP A.7)",
                           *len, PVM_ARGS_MAX);
  }
  return 0;
}

/* ---- why a run panicked ---- */

static uint32_t mem_address(const nub_pvm_vm *vm, const nub_pvm_insn *in) {
  switch (in->format) {
  case PVM_FMT_REG_IMM_IMM: return (uint32_t)(vm->regs[in->ra] + in->imm_x);
  case PVM_FMT_REG_REG_IMM: return (uint32_t)(vm->regs[in->rb] + in->imm_x);
  default: return (uint32_t)in->imm_x;
  }
}

const char *cli_panic_reason(const nub_pvm_vm *vm, char *buf, size_t cap) {
  const nub_pvm_program *prog = vm->prog;
  const nub_pvm_blob *b = nub_pvm_program_blob(prog);
  const nub_pvm_opinfo *isa = nub_pvm_isa(nub_pvm_program_profile(prog));
  nub_pvm_insn in;
  if (vm->status != PVM_PANIC) return "";
  if (vm->pc >= b->code_len) {
    snprintf(buf, cap, "pc %u is past the end of the code (%u bytes)", vm->pc, b->code_len);
    return buf;
  }
  if (!nub_pvm_blob_is_start(b, vm->pc)) {
    snprintf(buf, cap, "pc %u is not an instruction start", vm->pc);
    return buf;
  }
  nub_pvm_decode(nub_pvm_program_profile(prog), b, vm->pc, &in);
  const nub_pvm_opinfo *op = &isa[in.opcode];
  if (!op->name) {
    snprintf(buf, cap, "invalid opcode 0x%02x (%u) in profile %s", in.opcode, in.opcode,
             nub_pvm_profile_name(nub_pvm_program_profile(prog)));
  } else if (in.op == PVM_OP_TRAP) {
    snprintf(buf, cap, "trap instruction");
  } else if (op->flags & PVM_OPF_BRANCH) {
    snprintf(buf, cap, "%s to pc %lld, which does not start a basic block", op->name,
             (long long)in.target);
  } else if (op->flags & PVM_OPF_DJUMP) {
    bool imm_form = in.op == PVM_OP_LOAD_IMM_JUMP_IND;
    uint32_t a = (uint32_t)(imm_form ? vm->regs[in.rb] + in.imm_y : vm->regs[in.ra] + in.imm_x);
    const char *note = imm_form && in.ra == in.rb ? " (from the register after its write)" : "";
    if (a == 0 || (a & 1) || a / 2 > b->jump_count)
      snprintf(buf, cap, "%s to address 0x%x%s, not a jump table entry (a nonzero multiple of 2 "
               "up to 2 x %u entries)", op->name, a, note, b->jump_count);
    else
      snprintf(buf, cap, "%s through jump table entry %u to pc %u, which does not start a basic "
               "block", op->name, a / 2 - 1, nub_pvm_blob_jump_entry(b, a / 2 - 1));
  } else if (op->flags & (PVM_OPF_LOAD | PVM_OPF_STORE)) {
    uint32_t a = mem_address(vm, &in);
    const char *verb = op->flags & PVM_OPF_STORE ? "store to" : "load from";
    if (a < PVM_ZONE)
      snprintf(buf, cap, "%s %s address 0x%x, below 0x%x (never accessible)", op->name, verb, a,
               PVM_ZONE);
    else if ((op->flags & PVM_OPF_STORE) && nub_pvm_mem_access(vm->mem, a) == PVM_ACCESS_RO)
      snprintf(buf, cap, "%s %s read-only address 0x%x", op->name, verb, a);
    else
      snprintf(buf, cap, "%s %s address 0x%x (%u bytes) is not accessible", op->name, verb, a,
               op->width);
  } else {
    snprintf(buf, cap, "%s panicked", op->name);
  }
  return buf;
}

/* ---- caps of a program ---- */

void cli_cap_error(const char *cmd, const char *path, const nub_cap_error *err) {
  fprintf(stderr, "nub %s: %s: %s (%s", cmd, path, err->msg, nub_cap_errcode_name(err->code));
  if (!strstr(err->msg, "offset")) fprintf(stderr, ", offset %llu", (unsigned long long)err->offset);
  fprintf(stderr, ")\n");
}

int cli_build_caps(const char *cmd, const char *path, int format, nub_pvm_profile profile,
                   const uint8_t *data, size_t data_len, uint32_t exports, nub_cap_bundle *out) {
  uint32_t pcs[CAP_MAX_ENDPOINTS];
  uint8_t *bytes = NULL;
  size_t len;
  bool spi;
  nub_cap_error err;
  int rc = 1;
  if (cli_read_file(path, &bytes, &len) || cli_program_format(cmd, path, bytes, len, format, &spi))
    goto out;
  if (data && !spi) {
    rc = cli_usage_error(cmd, "--data needs an SPI program: %s is a generic blob, which has no "
                         "argument region (set registers with --regs)", path);
    goto out;
  }
  if (exports && !spi) {
    rc = cli_usage_error(cmd, "--exports needs an SPI program (nub link output): %s is a generic "
                         "blob", path);
    goto out;
  }
  for (uint32_t k = 0; k < exports && k < CAP_MAX_ENDPOINTS; k++) pcs[k] = 5 * k;   /* docs/toolchain.md */
  if (exports ? nub_cap_build_spi_endpoints(profile, bytes, len, data, (uint32_t)data_len, pcs,
                                        exports, out, &err)
      : spi ? nub_cap_build_spi(profile, bytes, len, data, (uint32_t)data_len, out, &err)
            : nub_cap_build_generic(profile, bytes, len, NULL, 0, out, &err)) {
    cli_cap_error(cmd, path, &err);
    goto out;
  }
  rc = 0;
out:
  free(bytes);
  return rc;
}
