/*
** nub link: a statically linked RISC-V ELF (RV64EMAC + Zbb, lp64e, linked
** with toolchain/pvm.ld and --emit-relocs) -> a PVM program.  The whole
** contract (flags, layout, register map, exports, host calls, jump tables,
** refusals) is docs/toolchain.md.
**
**   ELF ──sections, symbols, relocations──► decode every instruction
**        ──targets: branches, return sites, code addresses (relocations)──►
**        labels + jump table ──translate one by one──► nub_pvm_builder ──► SPI
*/
#include <elf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "link.h"

/* RISC-V relocation types (RISC-V ELF psABI) */
enum {
  R_32 = 1, R_64 = 2, R_BRANCH = 16, R_JAL = 17, R_CALL = 18, R_CALL_PLT = 19,
  R_GOT_HI20 = 20, R_PCREL_HI20 = 23, R_PCREL_LO12_I = 24, R_PCREL_LO12_S = 25,
  R_HI20 = 26, R_LO12_I = 27, R_LO12_S = 28, R_ALIGN = 43, R_RVC_BRANCH = 44,
  R_RVC_JUMP = 45, R_RELAX = 51,
};

typedef struct lsec {
  const char *name;
  uint32_t type, link, info;
  uint64_t flags, addr, size, off, entsize;
} lsec;

typedef struct lsym {
  const char *name;
  uint64_t value;
  uint16_t shndx;
  uint8_t type;
} lsym;

/* per-instruction flags */
enum {
  F_TARGET = 1,      /* a label: branch/jump target, return site, export */
  F_JT = 2,          /* its address is a value: gets a jump table entry */
  F_CODE_HI = 4,     /* lui/auipc whose relocation targets code (code_target) */
  F_CALL_HEAD = 8,   /* auipc of an auipc+jalr call pair */
  F_CODE_LO = 16,    /* lo12 relocation against code */
};

typedef struct lins {
  uint64_t addr;
  rv_insn rv;
  uint8_t flags;
  uint32_t label;
  uint32_t jt;               /* jump table index when F_JT */
  uint64_t code_target;      /* F_CODE_HI */
} lins;

typedef struct code_ptr {    /* a code address stored in data */
  uint64_t addr, target;
  uint8_t width;
} code_ptr;

typedef struct ctx {
  const uint8_t *elf, *end;
  const link_options *opt;
  lsec *secs;
  uint32_t nsec;
  lsym *syms;
  uint32_t nsym;
  uint64_t text_lo, text_hi;
  lins *ins;
  uint32_t nins, cap_ins;
  int32_t *slot;             /* (addr - text_lo) / 2 -> instruction index or -1 */
  code_ptr *cptr;
  uint32_t ncptr, cap_cptr;
  uint32_t njt;
  uint64_t scratch;          /* __nub_scratch, 0 = none */
  nub_pvm_builder *b;
  bool open;                 /* the last emitted instruction is no terminator */
  bool skip_next;            /* the next instruction was folded into this one */
  char *msg;
  size_t msg_len;
} ctx;

__attribute__((format(printf, 2, 3)))
static int fail(ctx *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->msg, c->msg_len, fmt, ap);
  va_end(ap);
  return -1;
}

/* "name+0xoff" of the code symbol at or before addr */
static void symbolize(const ctx *c, uint64_t addr, char *out, size_t n) {
  const lsym *best = NULL;
  for (uint32_t i = 0; i < c->nsym; i++) {
    const lsym *s = &c->syms[i];
    if (!s->name[0] || s->name[0] == '$' || s->shndx == SHN_UNDEF || s->shndx >= c->nsec ||
        !(c->secs[s->shndx].flags & SHF_EXECINSTR) || s->value > addr)
      continue;
    if (!strncmp(s->name, ".L", 2)) continue;
    if (!best || s->value > best->value ||
        (s->value == best->value && s->type == STT_FUNC && best->type != STT_FUNC))
      best = s;
  }
  if (!best) snprintf(out, n, "?");
  else if (addr == best->value) snprintf(out, n, "%s", best->name);
  else snprintf(out, n, "%s+0x%llx", best->name, (unsigned long long)(addr - best->value));
}

/* An error about instruction i: "0xADDR <sym+off>: mnemonic (bytes): why" */
__attribute__((format(printf, 3, 4)))
static int fail_at(ctx *c, const lins *in, const char *fmt, ...) {
  char sym[128], why[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  symbolize(c, in->addr, sym, sizeof sym);
  const char *name = in->rv.kind < RV_KIND_COUNT ? rv_name((rv_kind)in->rv.kind) : "unknown instruction";
  return fail(c, "0x%llx <%s>: %s (%0*x): %s", (unsigned long long)in->addr, sym, name,
              in->rv.len == 2 ? 4 : 8, in->rv.raw, why);
}

/* ------------------------------------------------------------------ */
/* ELF                                                                  */
/* ------------------------------------------------------------------ */

static uint64_t rd_le(const uint8_t *p, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

static bool in_file(const ctx *c, uint64_t off, uint64_t len) {
  uint64_t size = (uint64_t)(c->end - c->elf);
  return off <= size && len <= size - off;
}

static const char *str_at(const ctx *c, const lsec *strtab, uint64_t off) {
  if (!strtab || strtab->type == SHT_NOBITS || strtab->type == SHT_NULL || off >= strtab->size)
    return "?";   /* the other types were checked to lie inside the file */
  const char *s = (const char *)c->elf + strtab->off + off;
  if (!memchr(s, 0, strtab->size - off)) return "?";
  return s;
}

static int read_elf(ctx *c) {
  const uint8_t *e = c->elf;
  if (!in_file(c, 0, 64) || memcmp(e, ELFMAG, SELFMAG))
    return fail(c, "not an ELF file (no \\x7fELF magic in the first 64 bytes)");
  if (e[EI_CLASS] != ELFCLASS64 || e[EI_DATA] != ELFDATA2LSB)
    return fail(c, "ELF class %u data %u: nub link reads 64-bit little-endian ELF (RV64)",
                e[EI_CLASS], e[EI_DATA]);
  uint16_t type = (uint16_t)rd_le(e + 16, 2), machine = (uint16_t)rd_le(e + 18, 2);
  uint32_t flags = (uint32_t)rd_le(e + 48, 4);
  if (machine != EM_RISCV)
    return fail(c, "ELF machine %u is not RISC-V (%u)", machine, EM_RISCV);
  if (type != ET_EXEC)
    return fail(c, "ELF type %u: nub link takes a statically linked executable (ET_EXEC, "
                   "linked with toolchain/pvm.ld --emit-relocs), not an object or a PIE", type);
  if (flags & 0x6)
    return fail(c, "ELF flags 0x%x: hard-float ABI; compile with -mabi=lp64e (soft float)", flags);
  if (!(flags & 0x8))
    return fail(c, "ELF flags 0x%x: not RV64E (EF_RISCV_RVE missing); compile with "
                   "-march=rv64emac_zbb -mabi=lp64e", flags);
  uint64_t shoff = rd_le(e + 40, 8);
  uint16_t shentsize = (uint16_t)rd_le(e + 58, 2), shnum = (uint16_t)rd_le(e + 60, 2);
  uint16_t shstrndx = (uint16_t)rd_le(e + 62, 2);
  if (shentsize != 64 || !shnum || !in_file(c, shoff, (uint64_t)shnum * 64))
    return fail(c, "ELF section headers (offset %llu, %u x %u bytes) do not fit the %zu-byte file",
                (unsigned long long)shoff, shnum, shentsize, (size_t)(c->end - c->elf));
  if (shstrndx >= shnum) return fail(c, "ELF e_shstrndx %u >= %u sections", shstrndx, shnum);
  if (!(c->secs = calloc(shnum, sizeof *c->secs))) return fail(c, "out of memory");
  c->nsec = shnum;
  for (uint32_t i = 0; i < shnum; i++) {
    const uint8_t *h = e + shoff + 64ull * i;
    lsec *s = &c->secs[i];
    s->type = (uint32_t)rd_le(h + 4, 4);
    s->flags = rd_le(h + 8, 8);
    s->addr = rd_le(h + 16, 8);
    s->off = rd_le(h + 24, 8);
    s->size = rd_le(h + 32, 8);
    s->link = (uint32_t)rd_le(h + 40, 4);
    s->info = (uint32_t)rd_le(h + 44, 4);
    s->entsize = rd_le(h + 56, 8);
    if ((s->flags & SHF_ALLOC) && (s->size > (1ull << 32) || s->addr > UINT64_MAX - s->size))
      return fail(c, "ELF section %u: address 0x%llx + size %llu is beyond any address space",
                  i, (unsigned long long)s->addr, (unsigned long long)s->size);
    if (s->type == SHT_NULL && (s->flags & SHF_ALLOC) && s->size)
      return fail(c, "ELF section %u: type SHT_NULL but allocated", i);
    if (s->type != SHT_NOBITS && s->type != SHT_NULL && !in_file(c, s->off, s->size))
      return fail(c, "ELF section %u (offset %llu, %llu bytes) runs past the end of the file",
                  i, (unsigned long long)s->off, (unsigned long long)s->size);
  }
  const lsec *shstr = &c->secs[shstrndx];
  for (uint32_t i = 0; i < shnum; i++)
    c->secs[i].name = str_at(c, shstr, rd_le(e + shoff + 64ull * i, 4));
  for (uint32_t i = 0; i < shnum; i++) {
    const lsec *s = &c->secs[i];
    if (s->type != SHT_SYMTAB) continue;
    if (s->entsize != 24 || s->link >= shnum)
      return fail(c, "ELF symbol table %s: entry size %llu (want 24) or string table %u bad",
                  s->name, (unsigned long long)s->entsize, s->link);
    c->nsym = (uint32_t)(s->size / 24);
    if (!(c->syms = calloc(c->nsym ? c->nsym : 1, sizeof *c->syms))) return fail(c, "out of memory");
    for (uint32_t k = 0; k < c->nsym; k++) {
      const uint8_t *p = e + s->off + 24ull * k;
      c->syms[k].name = str_at(c, &c->secs[s->link], rd_le(p, 4));
      c->syms[k].type = p[4] & 0xf;
      c->syms[k].shndx = (uint16_t)rd_le(p + 6, 2);
      c->syms[k].value = rd_le(p + 8, 8);
    }
    break;
  }
  if (!c->syms)
    return fail(c, "the ELF has no symbol table: link without --strip-all (and with --emit-relocs)");
  return 0;
}

static const lsym *find_sym(const ctx *c, const char *name) {
  for (uint32_t i = 0; i < c->nsym; i++)
    if (c->syms[i].shndx != SHN_UNDEF && !strcmp(c->syms[i].name, name)) return &c->syms[i];
  return NULL;
}

static bool sym_is_code(const ctx *c, const lsym *s) {
  return s->shndx != SHN_UNDEF && s->shndx < c->nsec && (c->secs[s->shndx].flags & SHF_EXECINSTR);
}

/* ------------------------------------------------------------------ */
/* Decoding and targets                                                 */
/* ------------------------------------------------------------------ */

static lins *ins_at(const ctx *c, uint64_t addr) {
  if (addr < c->text_lo || addr >= c->text_hi || (addr & 1)) return NULL;
  int32_t i = c->slot[(addr - c->text_lo) / 2];
  return i < 0 ? NULL : &c->ins[i];
}

static bool is_fp_opcode(uint32_t raw, unsigned len) {
  if (len == 2) {
    unsigned q = raw & 3, f3 = (raw >> 13) & 7;
    return (q == 0 || q == 2) && (f3 == 1 || f3 == 5);   /* c.fld c.fsd c.fldsp c.fsdsp */
  }
  switch (raw & 0x7f) {
  case 0x07: case 0x27: case 0x43: case 0x47: case 0x4b: case 0x4f: case 0x53: return true;
  }
  return false;
}

static int decode_text(ctx *c) {
  c->text_lo = UINT64_MAX;
  c->text_hi = 0;
  for (uint32_t i = 0; i < c->nsec; i++) {
    const lsec *s = &c->secs[i];
    if (!(s->flags & SHF_ALLOC) || !(s->flags & SHF_EXECINSTR) || !s->size) continue;
    if (s->type != SHT_PROGBITS) return fail(c, "code section %s is not PROGBITS", s->name);
    if (s->addr < c->text_lo) c->text_lo = s->addr;
    if (s->addr + s->size > c->text_hi) c->text_hi = s->addr + s->size;
  }
  if (c->text_lo >= c->text_hi) return fail(c, "the ELF has no code (no allocated executable section)");
  if (c->text_hi - c->text_lo > PVM_MAX_CODE_LEN)
    return fail(c, "code spans %llu bytes, more than %u", (unsigned long long)(c->text_hi - c->text_lo),
                PVM_MAX_CODE_LEN);
  if (c->text_lo & 1) return fail(c, "code starts at odd address 0x%llx", (unsigned long long)c->text_lo);
  size_t nslots = (size_t)((c->text_hi - c->text_lo + 1) / 2);
  if (!(c->slot = malloc(nslots * sizeof *c->slot))) return fail(c, "out of memory");
  for (size_t k = 0; k < nslots; k++) c->slot[k] = -1;
  for (uint32_t i = 0; i < c->nsec; i++) {
    const lsec *s = &c->secs[i];
    if (!(s->flags & SHF_ALLOC) || !(s->flags & SHF_EXECINSTR) || !s->size) continue;
    const uint8_t *p = c->elf + s->off, *end = p + s->size;
    while (p < end) {
      if (c->nins == c->cap_ins) {
        uint32_t cap = c->cap_ins ? 2 * c->cap_ins : 4096;
        lins *n = realloc(c->ins, cap * sizeof *n);
        if (!n) return fail(c, "out of memory");
        c->ins = n;
        c->cap_ins = cap;
      }
      lins *in = &c->ins[c->nins];
      memset(in, 0, sizeof *in);
      in->addr = s->addr + (uint64_t)(p - (c->elf + s->off));
      if (rv_decode(p, end, &in->rv)) {
        if (in->rv.len < 2 || (in->rv.len == 4 && end - p < 4))
          return fail_at(c, in, "truncated at the end of section %s", s->name);
        if (is_fp_opcode(in->rv.raw, in->rv.len))
          return fail_at(c, in, "floating point is not supported: compile with the soft-float "
                                "ABI (-mabi=lp64e, no F/D in -march)");
        return fail_at(c, in, "not an RV64EMAC+Zbb instruction nub link translates");
      }
      c->slot[(in->addr - c->text_lo) / 2] = (int32_t)c->nins++;
      p += in->rv.len;
    }
  }
  return 0;
}

static int mark_target(ctx *c, const lins *from, uint64_t addr, uint8_t flags, const char *what) {
  lins *t = ins_at(c, addr);
  if (!t) {
    if (from) return fail_at(c, from, "%s 0x%llx is not the start of an instruction", what,
                             (unsigned long long)addr);
    return fail(c, "%s 0x%llx is not the start of an instruction", what, (unsigned long long)addr);
  }
  t->flags |= flags;
  return 0;
}

static const char *reloc_name(uint32_t t) {
  switch (t) {
  case 3: return "R_RISCV_RELATIVE";
  case 6: return "R_RISCV_TLS_DTPMOD64";
  case 20: return "R_RISCV_GOT_HI20";
  case 21: return "R_RISCV_TLS_GOT_HI20";
  case 22: return "R_RISCV_TLS_GD_HI20";
  case 29: return "R_RISCV_TPREL_HI20";
  case 30: return "R_RISCV_TPREL_LO12_I";
  case 31: return "R_RISCV_TPREL_LO12_S";
  case 32: return "R_RISCV_TPREL_ADD";
  case 33: return "R_RISCV_ADD8";
  case 35: return "R_RISCV_ADD32";
  case 36: return "R_RISCV_ADD64";
  case 39: return "R_RISCV_SUB32";
  case 40: return "R_RISCV_SUB64";
  case 57: return "R_RISCV_32_PCREL";
  }
  return "R_RISCV_?";
}

static int scan_relocs(ctx *c) {
  for (uint32_t i = 0; i < c->nsec; i++) {
    const lsec *rs = &c->secs[i];
    if (rs->type == SHT_REL)
      return fail(c, "section %s: REL relocations (RISC-V uses RELA)", rs->name);
    if (rs->type != SHT_RELA || rs->info >= c->nsec) continue;
    const lsec *tgt = &c->secs[rs->info];
    if (!(tgt->flags & SHF_ALLOC)) continue;       /* debug info and the like */
    if (rs->entsize != 24) return fail(c, "section %s: entry size %llu, want 24", rs->name,
                                       (unsigned long long)rs->entsize);
    bool code = tgt->flags & SHF_EXECINSTR;
    for (uint64_t k = 0; k < rs->size / 24; k++) {
      const uint8_t *p = c->elf + rs->off + 24 * k;
      uint64_t off = rd_le(p, 8), info = rd_le(p + 8, 8);
      int64_t addend = (int64_t)rd_le(p + 16, 8);
      uint32_t type = (uint32_t)info, si = (uint32_t)(info >> 32);
      if (si >= c->nsym) return fail(c, "section %s entry %llu: symbol %u >= %u", rs->name,
                                     (unsigned long long)k, si, c->nsym);
      const lsym *sym = &c->syms[si];
      uint64_t target = sym->value + (uint64_t)addend;
      bool to_code = sym_is_code(c, sym);
      if (!code) {
        if (!to_code) continue;                    /* data -> data: lld applied it */
        if (type != R_64 && type != R_32)
          return fail(c, "%s at 0x%llx (section %s) against code symbol %s: only R_RISCV_64 and "
                         "R_RISCV_32 code addresses in data are translated (no PIC jump tables: "
                         "compile with -fno-pic)", reloc_name(type), (unsigned long long)off,
                      tgt->name, sym->name);
        if (c->ncptr == c->cap_cptr) {
          uint32_t cap = c->cap_cptr ? 2 * c->cap_cptr : 256;
          code_ptr *n = realloc(c->cptr, cap * sizeof *n);
          if (!n) return fail(c, "out of memory");
          c->cptr = n;
          c->cap_cptr = cap;
        }
        c->cptr[c->ncptr++] = (code_ptr){off, target, type == R_64 ? 8 : 4};
        if (mark_target(c, NULL, target, F_TARGET | F_JT, "code address in data (symbol)")) {
          char keep[200];
          snprintf(keep, sizeof keep, "%s", c->msg);
          return fail(c, "%s at 0x%llx (section %s): %s %s", reloc_name(type),
                      (unsigned long long)off, tgt->name, sym->name, keep);
        }
        continue;
      }
      lins *in = ins_at(c, off);
      if (!in) return fail(c, "relocation type %u at 0x%llx is not at an instruction start", type,
                           (unsigned long long)off);
      switch (type) {
      case R_HI20: case R_PCREL_HI20:
        if (to_code) {
          in->flags |= F_CODE_HI;
          in->code_target = target;
          if (mark_target(c, in, target, F_TARGET | F_JT, "code address")) return -1;
        }
        break;
      case R_LO12_I: case R_LO12_S:
        if (to_code) in->flags |= F_CODE_LO;
        break;
      case R_PCREL_LO12_I: case R_PCREL_LO12_S: {
        const lins *hi = ins_at(c, target);
        if (hi && (hi->flags & F_CODE_HI)) in->flags |= F_CODE_LO;
        break;
      }
      case R_CALL: case R_CALL_PLT:
        in->flags |= F_CALL_HEAD;
        break;
      case R_BRANCH: case R_JAL: case R_RVC_BRANCH: case R_RVC_JUMP: case R_RELAX: case R_ALIGN:
        break;
      case 20: case 21: case 22:
        return fail_at(c, in, "%s against %s: GOT/PIC code is not supported (compile with "
                              "-fno-pic, link statically)", reloc_name(type), sym->name);
      case 29: case 30: case 31: case 32:
        return fail_at(c, in, "%s against %s: thread-local storage (tp-relative) is not supported",
                       reloc_name(type), sym->name);
      default:
        return fail_at(c, in, "relocation %s (%u) against %s is not supported in code",
                       reloc_name(type), type, sym->name);
      }
    }
  }
  return 0;
}

static int scan_targets(ctx *c) {
  for (uint32_t i = 0; i < c->nins; i++) {
    lins *in = &c->ins[i];
    const rv_insn *r = &in->rv;
    rv_class cls = rv_class_of((rv_kind)r->kind);
    if (r->kind == RV_AUIPC && !(in->flags & (F_CALL_HEAD | F_CODE_HI)) && r->rd &&
        i + 1 < c->nins) {
      /* a call the assembler resolved itself (same section): no relocation */
      const lins *nx = &c->ins[i + 1];
      if (nx->rv.kind == RV_JALR && nx->rv.rs1 == r->rd && nx->addr == in->addr + r->len &&
          ins_at(c, in->addr + (uint64_t)r->imm + (uint64_t)nx->rv.imm))
        in->flags |= F_CALL_HEAD;
    }
    if (in->flags & F_CALL_HEAD) {
      lins *nx = i + 1 < c->nins ? &c->ins[i + 1] : NULL;
      if (r->kind != RV_AUIPC || !nx || nx->addr != in->addr + r->len || nx->rv.kind != RV_JALR ||
          nx->rv.rs1 != r->rd || (nx->flags & F_TARGET))
        return fail_at(c, in, "R_RISCV_CALL is not on an auipc directly followed by a jalr "
                              "through the same register");
      uint64_t t = in->addr + (uint64_t)r->imm + (uint64_t)nx->rv.imm;
      if (mark_target(c, nx, t, F_TARGET, "call target")) return -1;
      if (nx->rv.rd && mark_target(c, nx, nx->addr + nx->rv.len, F_TARGET | F_JT,
                                   "return address (the call is the last instruction)"))
        return -1;
      i++;
      continue;
    }
    if (cls == RVC_BRANCH || cls == RVC_JAL) {
      if (mark_target(c, in, in->addr + (uint64_t)r->imm, F_TARGET, "target")) return -1;
    }
    if ((cls == RVC_JAL || cls == RVC_JALR) && r->rd &&
        mark_target(c, in, in->addr + r->len, F_TARGET | F_JT,
                    "return address (the call is the last instruction)"))
      return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Translation                                                          */
/* ------------------------------------------------------------------ */

/* RISC-V register -> PVM register (the JAM convention); -1: x0; -2: none */
static const int8_t reg_map[32] = {
  -1, 0, 1, -2, -2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
  -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2};

static int check_reg(ctx *c, const lins *in, unsigned x) {
  if (x == 3)
    return fail_at(c, in, "uses gp (x3): gp-relative addressing is not supported (compile with "
                          "-msmall-data-limit=0 -mno-relax)");
  if (x == 4) return fail_at(c, in, "uses tp (x4): thread-local storage is not supported");
  if (reg_map[x] == -2)
    return fail_at(c, in, "uses %s (x%u), which RV64E does not have (compile with "
                          "-march=rv64emac_zbb -mabi=lp64e)", rv_reg_name(x), x);
  return 0;
}

#define R(x) ((uint8_t)reg_map[x])

static uint64_t jt_value(const lins *t) { return 2ull * (t->jt + 1); }

static void emit(ctx *c, nub_pvm_op op, uint8_t ra, uint8_t rb, uint8_t rd, uint64_t x, uint64_t y) {
  int opcode = nub_pvm_opcode_of(c->opt->profile, op);   /* every op used exists in each profile */
  nub_pvm_builder_insn(c->b, op, ra, rb, rd, x, y);
  c->open = opcode < 0 || !(nub_pvm_isa(c->opt->profile)[opcode].flags & PVM_OPF_TERM);
}

static void load_const(ctx *c, uint8_t r, uint64_t v) {
  if ((uint64_t)(int64_t)(int32_t)v == v) emit(c, PVM_OP_LOAD_IMM, r, 0, 0, v, 0);
  else emit(c, PVM_OP_LOAD_IMM_64, r, 0, 0, v, 0);
}

static void branch(ctx *c, nub_pvm_op op, uint8_t ra, uint8_t rb, uint64_t imm, const lins *t) {
  nub_pvm_builder_branch(c->b, op, ra, rb, imm, t->label);
  c->open = false;
}

typedef struct op_row { uint8_t op, op_imm0; } op_row;

/* R-type -> reg-reg-reg op and, when rs2 is x0, the same op with
** immediate 0 (0xff: none) */
static op_row op_of(rv_kind k) {
  switch (k) {
  case RV_ADD: return (op_row){PVM_OP_ADD_64, PVM_OP_ADD_IMM_64};
  case RV_SUB: return (op_row){PVM_OP_SUB_64, PVM_OP_ADD_IMM_64};
  case RV_SLL: return (op_row){PVM_OP_SHLO_L_64, PVM_OP_SHLO_L_IMM_64};
  case RV_SLT: return (op_row){PVM_OP_SET_LT_S, PVM_OP_SET_LT_S_IMM};
  case RV_SLTU: return (op_row){PVM_OP_SET_LT_U, PVM_OP_SET_LT_U_IMM};
  case RV_XOR: return (op_row){PVM_OP_XOR, PVM_OP_XOR_IMM};
  case RV_SRL: return (op_row){PVM_OP_SHLO_R_64, PVM_OP_SHLO_R_IMM_64};
  case RV_SRA: return (op_row){PVM_OP_SHAR_R_64, PVM_OP_SHAR_R_IMM_64};
  case RV_OR: return (op_row){PVM_OP_OR, PVM_OP_OR_IMM};
  case RV_AND: return (op_row){PVM_OP_AND, PVM_OP_AND_IMM};
  case RV_ADDW: return (op_row){PVM_OP_ADD_32, PVM_OP_ADD_IMM_32};
  case RV_SUBW: return (op_row){PVM_OP_SUB_32, PVM_OP_ADD_IMM_32};
  case RV_SLLW: return (op_row){PVM_OP_SHLO_L_32, PVM_OP_SHLO_L_IMM_32};
  case RV_SRLW: return (op_row){PVM_OP_SHLO_R_32, PVM_OP_SHLO_R_IMM_32};
  case RV_SRAW: return (op_row){PVM_OP_SHAR_R_32, PVM_OP_SHAR_R_IMM_32};
  case RV_MUL: return (op_row){PVM_OP_MUL_64, PVM_OP_MUL_IMM_64};
  case RV_MULH: return (op_row){PVM_OP_MUL_UPPER_S_S, 0xff};
  case RV_MULHSU: return (op_row){PVM_OP_MUL_UPPER_S_U, 0xff};
  case RV_MULHU: return (op_row){PVM_OP_MUL_UPPER_U_U, 0xff};
  case RV_DIV: return (op_row){PVM_OP_DIV_S_64, 0xff};
  case RV_DIVU: return (op_row){PVM_OP_DIV_U_64, 0xff};
  case RV_REM: return (op_row){PVM_OP_REM_S_64, 0xff};
  case RV_REMU: return (op_row){PVM_OP_REM_U_64, 0xff};
  case RV_MULW: return (op_row){PVM_OP_MUL_32, PVM_OP_MUL_IMM_32};
  case RV_DIVW: return (op_row){PVM_OP_DIV_S_32, 0xff};
  case RV_DIVUW: return (op_row){PVM_OP_DIV_U_32, 0xff};
  case RV_REMW: return (op_row){PVM_OP_REM_S_32, 0xff};
  case RV_REMUW: return (op_row){PVM_OP_REM_U_32, 0xff};
  case RV_ANDN: return (op_row){PVM_OP_AND_INV, 0xff};
  case RV_ORN: return (op_row){PVM_OP_OR_INV, 0xff};
  case RV_XNOR: return (op_row){PVM_OP_XNOR, 0xff};
  case RV_MAX: return (op_row){PVM_OP_MAX, 0xff};
  case RV_MAXU: return (op_row){PVM_OP_MAX_U, 0xff};
  case RV_MIN: return (op_row){PVM_OP_MIN, 0xff};
  case RV_MINU: return (op_row){PVM_OP_MIN_U, 0xff};
  case RV_ROL: return (op_row){PVM_OP_ROT_L_64, PVM_OP_ROT_R_64_IMM};
  case RV_ROR: return (op_row){PVM_OP_ROT_R_64, PVM_OP_ROT_R_64_IMM};
  case RV_ROLW: return (op_row){PVM_OP_ROT_L_32, PVM_OP_ROT_R_32_IMM};
  case RV_RORW: return (op_row){PVM_OP_ROT_R_32, PVM_OP_ROT_R_32_IMM};
  default: return (op_row){0xff, 0xff};
  }
}

static nub_pvm_op opimm_of(rv_kind k) {
  switch (k) {
  case RV_ADDI: return PVM_OP_ADD_IMM_64;
  case RV_SLTI: return PVM_OP_SET_LT_S_IMM;
  case RV_SLTIU: return PVM_OP_SET_LT_U_IMM;
  case RV_XORI: return PVM_OP_XOR_IMM;
  case RV_ORI: return PVM_OP_OR_IMM;
  case RV_ANDI: return PVM_OP_AND_IMM;
  case RV_SLLI: return PVM_OP_SHLO_L_IMM_64;
  case RV_SRLI: return PVM_OP_SHLO_R_IMM_64;
  case RV_SRAI: return PVM_OP_SHAR_R_IMM_64;
  case RV_ADDIW: return PVM_OP_ADD_IMM_32;
  case RV_SLLIW: return PVM_OP_SHLO_L_IMM_32;
  case RV_SRLIW: return PVM_OP_SHLO_R_IMM_32;
  case RV_SRAIW: return PVM_OP_SHAR_R_IMM_32;
  case RV_RORI: return PVM_OP_ROT_R_64_IMM;
  case RV_RORIW: return PVM_OP_ROT_R_32_IMM;
  case RV_CLZ: return PVM_OP_LEADING_ZERO_BITS_64;
  case RV_CTZ: return PVM_OP_TRAILING_ZERO_BITS_64;
  case RV_CPOP: return PVM_OP_COUNT_SET_BITS_64;
  case RV_CLZW: return PVM_OP_LEADING_ZERO_BITS_32;
  case RV_CTZW: return PVM_OP_TRAILING_ZERO_BITS_32;
  case RV_CPOPW: return PVM_OP_COUNT_SET_BITS_32;
  case RV_SEXTB: return PVM_OP_SIGN_EXTEND_8;
  case RV_SEXTH: return PVM_OP_SIGN_EXTEND_16;
  case RV_ZEXTH: return PVM_OP_ZERO_EXTEND_16;
  case RV_REV8: return PVM_OP_REVERSE_BYTES;
  default: return (nub_pvm_op)0xff;
  }
}

/* load: {register-indirect, absolute}; store: {ind, imm_ind, abs, imm_abs} */
static void mem_ops(rv_kind k, nub_pvm_op o[4]) {
  static const struct { uint8_t k, o[4]; } t[] = {
    {RV_LB, {PVM_OP_LOAD_IND_I8, PVM_OP_LOAD_I8}},
    {RV_LH, {PVM_OP_LOAD_IND_I16, PVM_OP_LOAD_I16}},
    {RV_LW, {PVM_OP_LOAD_IND_I32, PVM_OP_LOAD_I32}},
    {RV_LD, {PVM_OP_LOAD_IND_U64, PVM_OP_LOAD_U64}},
    {RV_LBU, {PVM_OP_LOAD_IND_U8, PVM_OP_LOAD_U8}},
    {RV_LHU, {PVM_OP_LOAD_IND_U16, PVM_OP_LOAD_U16}},
    {RV_LWU, {PVM_OP_LOAD_IND_U32, PVM_OP_LOAD_U32}},
    {RV_SB, {PVM_OP_STORE_IND_U8, PVM_OP_STORE_IMM_IND_U8, PVM_OP_STORE_U8, PVM_OP_STORE_IMM_U8}},
    {RV_SH, {PVM_OP_STORE_IND_U16, PVM_OP_STORE_IMM_IND_U16, PVM_OP_STORE_U16, PVM_OP_STORE_IMM_U16}},
    {RV_SW, {PVM_OP_STORE_IND_U32, PVM_OP_STORE_IMM_IND_U32, PVM_OP_STORE_U32, PVM_OP_STORE_IMM_U32}},
    {RV_SD, {PVM_OP_STORE_IND_U64, PVM_OP_STORE_IMM_IND_U64, PVM_OP_STORE_U64, PVM_OP_STORE_IMM_U64}},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (t[i].k == k) {
      for (int j = 0; j < 4; j++) o[j] = (nub_pvm_op)t[i].o[j];
      return;
    }
}

static int translate_op(ctx *c, const lins *in) {
  const rv_insn *r = &in->rv;
  op_row row = op_of((rv_kind)r->kind);
  uint8_t rd = R(r->rd);
  if (!r->rd) return 0;
  if (r->rs1 && r->rs2) {
    emit(c, (nub_pvm_op)row.op, R(r->rs1), R(r->rs2), rd, 0, 0);
    return 0;
  }
  if (r->rs1 && !r->rs2) {            /* op(rs1, 0) */
    if (row.op_imm0 != 0xff) {
      emit(c, (nub_pvm_op)row.op_imm0, rd, R(r->rs1), 0, 0, 0);
      return 0;
    }
    switch (r->kind) {               /* results known from RISC-V semantics */
    case RV_DIV: case RV_DIVU: case RV_DIVW: case RV_DIVUW: case RV_ORN:
      emit(c, PVM_OP_LOAD_IMM, rd, 0, 0, UINT64_MAX, 0);   /* x / 0 = all ones */
      return 0;
    case RV_MULH: case RV_MULHSU: case RV_MULHU: case RV_ANDN:
      emit(c, PVM_OP_LOAD_IMM, rd, 0, 0, 0, 0);
      return 0;
    case RV_REM: case RV_REMU:                             /* x % 0 = x */
      emit(c, PVM_OP_MOVE_REG, R(r->rs1), 0, rd, 0, 0);
      return 0;
    case RV_REMW: case RV_REMUW:
      emit(c, PVM_OP_ADD_IMM_32, rd, R(r->rs1), 0, 0, 0);
      return 0;
    case RV_XNOR:
      emit(c, PVM_OP_XOR_IMM, rd, R(r->rs1), 0, UINT64_MAX, 0);
      return 0;
    }
    if (r->rd != r->rs1) {            /* rd as the zero operand */
      emit(c, PVM_OP_LOAD_IMM, rd, 0, 0, 0, 0);
      emit(c, (nub_pvm_op)row.op, R(r->rs1), rd, rd, 0, 0);
      return 0;
    }
  } else if (!r->rs1 && r->rs2) {     /* op(0, rs2) */
    uint8_t s = R(r->rs2);
    switch (r->kind) {
    case RV_ADD: case RV_OR: case RV_XOR:
      emit(c, PVM_OP_MOVE_REG, s, 0, rd, 0, 0);
      return 0;
    case RV_SUB: emit(c, PVM_OP_NEG_ADD_IMM_64, rd, s, 0, 0, 0); return 0;
    case RV_SUBW: emit(c, PVM_OP_NEG_ADD_IMM_32, rd, s, 0, 0, 0); return 0;
    case RV_ADDW: emit(c, PVM_OP_ADD_IMM_32, rd, s, 0, 0, 0); return 0;
    case RV_SLT: emit(c, PVM_OP_SET_GT_S_IMM, rd, s, 0, 0, 0); return 0;
    case RV_SLTU: emit(c, PVM_OP_SET_GT_U_IMM, rd, s, 0, 0, 0); return 0;
    case RV_ORN: case RV_XNOR: emit(c, PVM_OP_XOR_IMM, rd, s, 0, UINT64_MAX, 0); return 0;
    case RV_REM: case RV_REMU: case RV_REMW: case RV_REMUW: case RV_MUL: case RV_MULW:
    case RV_MULH: case RV_MULHSU: case RV_MULHU: case RV_AND: case RV_ANDN: case RV_SLL:
    case RV_SRL: case RV_SRA: case RV_SLLW: case RV_SRLW: case RV_SRAW: case RV_ROL:
    case RV_ROR: case RV_ROLW: case RV_RORW:
      emit(c, PVM_OP_LOAD_IMM, rd, 0, 0, 0, 0);      /* 0 op y = 0 (0 % 0 = 0 too) */
      return 0;
    case RV_DIV: case RV_DIVU: case RV_DIVW: case RV_DIVUW:  /* 0 / y = (y == 0 ? -1 : 0) */
      if (r->kind == RV_DIVW || r->kind == RV_DIVUW) {
        emit(c, PVM_OP_SHLO_L_IMM_64, rd, s, 0, 32, 0);     /* only the low 32 bits count */
        s = rd;
      }
      emit(c, PVM_OP_SET_LT_U_IMM, rd, s, 0, 1, 0);
      emit(c, PVM_OP_NEG_ADD_IMM_64, rd, rd, 0, 0, 0);
      return 0;
    }
    if (r->rd != r->rs2) {
      emit(c, PVM_OP_LOAD_IMM, rd, 0, 0, 0, 0);
      emit(c, (nub_pvm_op)row.op, rd, s, rd, 0, 0);
      return 0;
    }
  } else {                            /* op(0, 0) */
    emit(c, PVM_OP_LOAD_IMM, rd, 0, 0, 0, 0);
    emit(c, (nub_pvm_op)row.op, rd, rd, rd, 0, 0);
    return 0;
  }
  return fail_at(c, in, "x0 operand with rd = the other source needs a scratch register");
}

/* amo*: rd = old; mem = old op rs2, through two registers saved in
** __nub_scratch (the translation has no free register) */
static int translate_amo(ctx *c, const lins *in) {
  const rv_insn *r = &in->rv;
  bool w = r->kind <= RV_AMOMAXUW;
  rv_kind base = w ? (rv_kind)r->kind : (rv_kind)(r->kind - (RV_AMOSWAPD - RV_AMOSWAPW));
  nub_pvm_op op;
  switch (base) {
  case RV_AMOSWAPW: op = (nub_pvm_op)0xff; break;
  case RV_AMOADDW: op = PVM_OP_ADD_64; break;
  case RV_AMOXORW: op = PVM_OP_XOR; break;
  case RV_AMOANDW: op = PVM_OP_AND; break;
  case RV_AMOORW: op = PVM_OP_OR; break;
  case RV_AMOMINW: op = PVM_OP_MIN; break;
  case RV_AMOMAXW: op = PVM_OP_MAX; break;
  case RV_AMOMINUW: op = PVM_OP_MIN_U; break;
  default: op = PVM_OP_MAX_U; break;
  }
  if (!r->rs1) return fail_at(c, in, "an atomic on an absolute address (rs1 = zero)");
  if (!c->scratch)
    return fail_at(c, in, "atomics need the 16-byte __nub_scratch area toolchain/pvm.ld defines");
  uint8_t t[2], n = 0;
  for (uint8_t p = 0; p < PVM_REGS && n < 2; p++)
    if ((!r->rd || p != R(r->rd)) && p != R(r->rs1) && (!r->rs2 || p != R(r->rs2))) t[n++] = p;
  uint32_t s = (uint32_t)c->scratch;
  emit(c, PVM_OP_STORE_U64, t[0], 0, 0, s, 0);
  emit(c, PVM_OP_STORE_U64, t[1], 0, 0, s + 8, 0);
  emit(c, w ? PVM_OP_LOAD_IND_I32 : PVM_OP_LOAD_IND_U64, t[0], R(r->rs1), 0, 0, 0);
  if (!r->rs2) emit(c, PVM_OP_LOAD_IMM, t[1], 0, 0, 0, 0);
  else if (w && (op == PVM_OP_MIN || op == PVM_OP_MAX || op == PVM_OP_MIN_U || op == PVM_OP_MAX_U))
    emit(c, PVM_OP_ADD_IMM_32, t[1], R(r->rs2), 0, 0, 0);   /* compare the low 32 bits */
  else emit(c, PVM_OP_MOVE_REG, R(r->rs2), 0, t[1], 0, 0);
  if (op != 0xff) emit(c, op, t[0], t[1], t[1], 0, 0);
  emit(c, w ? PVM_OP_STORE_IND_U32 : PVM_OP_STORE_IND_U64, t[1], R(r->rs1), 0, 0, 0);
  if (r->rd) emit(c, PVM_OP_MOVE_REG, t[0], 0, R(r->rd), 0, 0);
  emit(c, PVM_OP_LOAD_U64, t[0], 0, 0, s, 0);
  emit(c, PVM_OP_LOAD_U64, t[1], 0, 0, s + 8, 0);
  return 0;
}

static int translate_branch(ctx *c, const lins *in, const lins *t) {
  const rv_insn *r = &in->rv;
  /* cond(a, b) as reg-reg op; with b = 0 and with a = 0 as reg-imm ops;
  ** 1 = always, 0 = never when both are x0 */
  static const struct { uint8_t k, rr, b0, a0, both; } rows[] = {
    {RV_BEQ, PVM_OP_BRANCH_EQ, PVM_OP_BRANCH_EQ_IMM, PVM_OP_BRANCH_EQ_IMM, 1},
    {RV_BNE, PVM_OP_BRANCH_NE, PVM_OP_BRANCH_NE_IMM, PVM_OP_BRANCH_NE_IMM, 0},
    {RV_BLT, PVM_OP_BRANCH_LT_S, PVM_OP_BRANCH_LT_S_IMM, PVM_OP_BRANCH_GT_S_IMM, 0},
    {RV_BGE, PVM_OP_BRANCH_GE_S, PVM_OP_BRANCH_GE_S_IMM, PVM_OP_BRANCH_LE_S_IMM, 1},
    {RV_BLTU, PVM_OP_BRANCH_LT_U, 0xff /* never */, PVM_OP_BRANCH_GT_U_IMM, 0},
    {RV_BGEU, PVM_OP_BRANCH_GE_U, 0xfe /* always */, PVM_OP_BRANCH_LE_U_IMM, 1},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    if (rows[i].k != r->kind) continue;
    uint8_t op;
    if (r->rs1 && r->rs2) {
      branch(c, (nub_pvm_op)rows[i].rr, R(r->rs1), R(r->rs2), 0, t);
      return 0;
    }
    if (r->rs1 || r->rs2) {
      op = r->rs1 ? rows[i].b0 : rows[i].a0;
      if (op < 0xfe) {
        branch(c, (nub_pvm_op)op, R(r->rs1 ? r->rs1 : r->rs2), 0, 0, t);
        return 0;
      }
    } else {
      op = rows[i].both ? 0xfe : 0xff;
    }
    if (op == 0xfe) branch(c, PVM_OP_JUMP, 0, 0, 0, t);
    return 0;
  }
  return fail_at(c, in, "unknown branch");
}

static int translate(ctx *c, uint32_t i) {
  const lins *in = &c->ins[i];
  const rv_insn *r = &in->rv;
  rv_class cls = rv_class_of((rv_kind)r->kind);
  nub_pvm_op mo[4] = {0};
  if (cls == RVC_REFUSE) {
    switch (r->kind) {
    case RV_ECALL:
      return fail_at(c, in, "ecall has no PVM meaning: host calls use the nub host-call "
                            "instruction (.insn i 0x0b, 0, x0, x0, ID; docs/toolchain.md)");
    case RV_EBREAK: return fail_at(c, in, "ebreak is not translated (__builtin_trap gives unimp, a PVM trap)");
    case RV_FENCEI: return fail_at(c, in, "fence.i: code is not data in PVM (no self-modifying code)");
    case RV_CSR: return fail_at(c, in, "CSR 0x%llx access has no PVM meaning", (unsigned long long)r->imm);
    default: return fail_at(c, in, "no PVM equivalent");
    }
  }
  if (check_reg(c, in, r->rd) || check_reg(c, in, r->rs1) || check_reg(c, in, r->rs2)) return -1;
  if ((in->flags & F_CODE_LO) && (cls == RVC_LOAD || cls == RVC_STORE))
    return fail_at(c, in, "reads or writes code as data (code is not in PVM memory)");
  switch (cls) {
  case RVC_LUI: case RVC_AUIPC: {
    if (in->flags & F_CALL_HEAD) return 0;      /* the jalr emits the call */
    if (!r->rd) return 0;
    uint64_t v = (uint64_t)r->imm + (cls == RVC_AUIPC ? in->addr : 0);
    if (in->flags & F_CODE_HI) {
      const lins *t = ins_at(c, in->code_target);
      v += jt_value(t) - in->code_target;       /* lo12 additions now land on the entry */
    }
    const lins *nx = i + 1 < c->nins ? &c->ins[i + 1] : NULL;
    if (nx && !(nx->flags & F_TARGET) && nx->addr == in->addr + r->len &&
        (nx->rv.kind == RV_ADDI || nx->rv.kind == RV_ADDIW) && nx->rv.rd == r->rd &&
        nx->rv.rs1 == r->rd) {
      /* lui/auipc + addi(w) of the same register: one load_imm (peephole) */
      v += (uint64_t)nx->rv.imm;
      if (nx->rv.kind == RV_ADDIW) v = (uint64_t)(int64_t)(int32_t)v;
      c->skip_next = true;
    }
    load_const(c, R(r->rd), v);
    return 0;
  }
  case RVC_JAL: case RVC_JALR: {
    const lins *t = NULL;
    if (cls == RVC_JAL) t = ins_at(c, in->addr + (uint64_t)r->imm);
    else if (i > 0 && (c->ins[i - 1].flags & F_CALL_HEAD))
      t = ins_at(c, c->ins[i - 1].addr + (uint64_t)c->ins[i - 1].rv.imm + (uint64_t)r->imm);
    if (t) {
      if (!r->rd) branch(c, PVM_OP_JUMP, 0, 0, 0, t);
      else branch(c, PVM_OP_LOAD_IMM_JUMP, R(r->rd), 0, jt_value(ins_at(c, in->addr + r->len)), t);
      return 0;
    }
    if (!r->rs1) return fail_at(c, in, "jump to an absolute address (rs1 = zero)");
    if (r->imm)
      return fail_at(c, in, "indirect jump with offset %lld: code addresses are jump table "
                            "entries, an offset cannot address one", (long long)r->imm);
    if (!r->rd) emit(c, PVM_OP_JUMP_IND, R(r->rs1), 0, 0, 0, 0);
    else emit(c, PVM_OP_LOAD_IMM_JUMP_IND, R(r->rd), R(r->rs1), 0,
              jt_value(ins_at(c, in->addr + r->len)), 0);
    return 0;
  }
  case RVC_BRANCH:
    return translate_branch(c, in, ins_at(c, in->addr + (uint64_t)r->imm));
  case RVC_LOAD:
    if (!r->rd) return 0;
    mem_ops((rv_kind)r->kind, mo);
    if (r->rs1) emit(c, mo[0], R(r->rd), R(r->rs1), 0, (uint64_t)r->imm, 0);
    else emit(c, mo[1], R(r->rd), 0, 0, (uint64_t)r->imm, 0);
    return 0;
  case RVC_STORE:
    mem_ops((rv_kind)r->kind, mo);
    if (r->rs1 && r->rs2) emit(c, mo[0], R(r->rs2), R(r->rs1), 0, (uint64_t)r->imm, 0);
    else if (r->rs1) emit(c, mo[1], R(r->rs1), 0, 0, (uint64_t)r->imm, 0);
    else if (r->rs2) emit(c, mo[2], R(r->rs2), 0, 0, (uint64_t)r->imm, 0);
    else emit(c, mo[3], 0, 0, 0, (uint64_t)r->imm, 0);
    return 0;
  case RVC_OPIMM: {
    nub_pvm_op op = opimm_of((rv_kind)r->kind);
    if (!r->rd) return 0;                        /* nop, hint */
    if (!r->rs1) {
      if (op == PVM_OP_ADD_IMM_64 || op == PVM_OP_ADD_IMM_32 || op == PVM_OP_OR_IMM ||
          op == PVM_OP_XOR_IMM) {
        load_const(c, R(r->rd), (uint64_t)r->imm);
        return 0;
      }
      emit(c, PVM_OP_LOAD_IMM, R(r->rd), 0, 0, 0, 0);
      emit(c, op, R(r->rd), R(r->rd), 0, (uint64_t)r->imm, 0);
      return 0;
    }
    if (op == PVM_OP_ADD_IMM_64 && r->imm == 0) emit(c, PVM_OP_MOVE_REG, R(r->rs1), 0, R(r->rd), 0, 0);
    else emit(c, op, R(r->rd), R(r->rs1), 0, (uint64_t)r->imm, 0);
    return 0;
  }
  case RVC_OP:
    return translate_op(c, in);
  case RVC_UNARY: {
    nub_pvm_op op = opimm_of((rv_kind)r->kind);
    if (!r->rd) return 0;
    if (!r->rs1) {
      emit(c, PVM_OP_LOAD_IMM, R(r->rd), 0, 0, 0, 0);
      emit(c, op, R(r->rd), 0, R(r->rd), 0, 0);
    } else {
      emit(c, op, R(r->rs1), 0, R(r->rd), 0, 0);
    }
    return 0;
  }
  case RVC_NOP: return 0;
  case RVC_TRAP: emit(c, PVM_OP_TRAP, 0, 0, 0, 0, 0); return 0;
  case RVC_HOSTCALL: emit(c, PVM_OP_ECALLI, 0, 0, 0, (uint64_t)r->imm, 0); return 0;
  case RVC_LR:
    if (!r->rs1) return fail_at(c, in, "lr on an absolute address (rs1 = zero)");
    if (r->rd)
      emit(c, r->kind == RV_LRW ? PVM_OP_LOAD_IND_I32 : PVM_OP_LOAD_IND_U64, R(r->rd), R(r->rs1), 0, 0, 0);
    return 0;
  case RVC_SC: {
    bool w = r->kind == RV_SCW;
    if (!r->rs1) return fail_at(c, in, "sc on an absolute address (rs1 = zero)");
    if (r->rs2) emit(c, w ? PVM_OP_STORE_IND_U32 : PVM_OP_STORE_IND_U64, R(r->rs2), R(r->rs1), 0, 0, 0);
    else emit(c, w ? PVM_OP_STORE_IMM_IND_U32 : PVM_OP_STORE_IMM_IND_U64, R(r->rs1), 0, 0, 0, 0);
    if (r->rd) emit(c, PVM_OP_LOAD_IMM, R(r->rd), 0, 0, 0, 0);   /* always succeeds */
    return 0;
  }
  case RVC_AMO:
    return translate_amo(c, in);
  case RVC_REFUSE:
    break;
  }
  return fail_at(c, in, "not translated");
}

/* ------------------------------------------------------------------ */
/* Data, exports, the whole program                                     */
/* ------------------------------------------------------------------ */

typedef struct image {
  uint8_t *ro, *rw;
  uint32_t ro_len, rw_len, heap_pages, stack_size;
} image;

static uint64_t page_up(uint64_t x) { return (x + PVM_PAGE_SIZE - 1) & ~(uint64_t)(PVM_PAGE_SIZE - 1); }
static uint64_t zone_up(uint64_t x) { return (x + PVM_ZONE - 1) & ~(uint64_t)(PVM_ZONE - 1); }

static int build_data(ctx *c, image *im) {
  uint64_t ro_end = PVM_ZONE, rw_start, rw_data_end, rw_end;
  for (uint32_t i = 0; i < c->nsec; i++) {
    const lsec *s = &c->secs[i];
    if (!(s->flags & SHF_ALLOC) || (s->flags & (SHF_EXECINSTR | SHF_WRITE)) || !s->size) continue;
    if (s->flags & SHF_TLS) return fail(c, "section %s: thread-local storage is not supported", s->name);
    if (s->addr < PVM_ZONE)
      return fail(c, "read-only section %s at 0x%llx is below 0x10000, where SPI read-only data "
                     "starts: link with toolchain/pvm.ld", s->name, (unsigned long long)s->addr);
    if (s->addr + s->size > ro_end) ro_end = s->addr + s->size;
  }
  if (ro_end - PVM_ZONE >= (1u << 24))
    return fail(c, "read-only data ends at 0x%llx: %llu bytes, more than the SPI limit 2^24",
                (unsigned long long)ro_end, (unsigned long long)(ro_end - PVM_ZONE));
  rw_start = 2 * PVM_ZONE + zone_up(ro_end - PVM_ZONE);
  rw_data_end = rw_end = rw_start;
  for (uint32_t i = 0; i < c->nsec; i++) {
    const lsec *s = &c->secs[i];
    if (!(s->flags & SHF_ALLOC) || (s->flags & SHF_EXECINSTR) || !(s->flags & SHF_WRITE) || !s->size)
      continue;
    if (s->flags & SHF_TLS) return fail(c, "section %s: thread-local storage is not supported", s->name);
    if (s->addr < rw_start || s->addr + s->size > (1ull << 32))
      return fail(c, "writable section %s at 0x%llx is not where the SPI layout puts read-write "
                     "data (from 0x%llx, after %llu bytes of read-only data): link with "
                     "toolchain/pvm.ld", s->name, (unsigned long long)s->addr,
                  (unsigned long long)rw_start, (unsigned long long)(ro_end - PVM_ZONE));
    if (s->type != SHT_NOBITS && s->addr + s->size > rw_data_end) rw_data_end = s->addr + s->size;
    if (s->addr + s->size > rw_end) rw_end = s->addr + s->size;
  }
  for (uint32_t i = 0; i < c->nsec; i++) {      /* read-only data after the rw start? */
    const lsec *s = &c->secs[i];
    if ((s->flags & SHF_ALLOC) && !(s->flags & (SHF_EXECINSTR | SHF_WRITE)) && s->size &&
        s->addr + s->size > rw_start)
      return fail(c, "read-only section %s ends past the read-write start", s->name);
  }
  if (c->text_lo < rw_end && c->text_hi > PVM_ZONE && c->text_lo < (1ull << 32))
    return fail(c, "code at 0x%llx overlaps the data (0x10000..0x%llx): link with toolchain/pvm.ld",
                (unsigned long long)c->text_lo, (unsigned long long)rw_end);
  if (rw_data_end - rw_start >= (1u << 24) || rw_end - rw_start > (1ull << 32) - rw_start)
    return fail(c, "read-write data of %llu bytes (limit 2^24) or zero pages up to 0x%llx do "
                   "not fit the SPI layout", (unsigned long long)(rw_data_end - rw_start),
                (unsigned long long)rw_end);
  im->ro_len = (uint32_t)(ro_end - PVM_ZONE);
  im->rw_len = (uint32_t)(rw_data_end - rw_start);
  im->heap_pages = (uint32_t)((page_up(rw_end - rw_start) - page_up(im->rw_len)) / PVM_PAGE_SIZE);
  if (!(im->ro = calloc(1, im->ro_len + 1)) || !(im->rw = calloc(1, im->rw_len + 1)))
    return fail(c, "out of memory");
  for (uint32_t i = 0; i < c->nsec; i++) {
    const lsec *s = &c->secs[i];
    if (!(s->flags & SHF_ALLOC) || (s->flags & SHF_EXECINSTR) || s->type == SHT_NOBITS || !s->size)
      continue;
    if (s->flags & SHF_WRITE) memcpy(im->rw + (s->addr - rw_start), c->elf + s->off, s->size);
    else memcpy(im->ro + (s->addr - PVM_ZONE), c->elf + s->off, s->size);
  }
  for (uint32_t k = 0; k < c->ncptr; k++) {     /* code addresses -> jump table addresses */
    const code_ptr *p = &c->cptr[k];
    uint8_t *at;
    if (p->addr >= PVM_ZONE && p->addr + p->width <= ro_end) at = im->ro + (p->addr - PVM_ZONE);
    else if (p->addr >= rw_start && p->addr + p->width <= rw_data_end) at = im->rw + (p->addr - rw_start);
    else return fail(c, "code address stored at 0x%llx, outside the data", (unsigned long long)p->addr);
    uint64_t stored = 0, mask = p->width == 8 ? UINT64_MAX : 0xffffffffull;
    for (unsigned b = 0; b < p->width; b++) stored |= (uint64_t)at[b] << (8 * b);
    if (stored != (p->target & mask))
      return fail(c, "code address at 0x%llx holds 0x%llx but its relocation says 0x%llx",
                  (unsigned long long)p->addr, (unsigned long long)stored,
                  (unsigned long long)p->target);
    uint64_t v = jt_value(ins_at(c, p->target));
    for (unsigned b = 0; b < p->width; b++) at[b] = (uint8_t)(v >> (8 * b));
  }
  return 0;
}

static int parse_export_name(const char *name, uint32_t *key) {
  const char *pre = "__nub_export_";
  size_t n = strlen(pre);
  char *e;
  if (strncmp(name, pre, n) || !name[n]) return -1;
  unsigned long v = strtoul(name + n, &e, 10);
  if (*e || v >= LINK_MAX_EXPORTS) return -1;
  *key = (uint32_t)v;
  return 0;
}

static int collect_exports(ctx *c, uint64_t addrs[LINK_MAX_EXPORTS], bool have[LINK_MAX_EXPORTS],
                           uint32_t *count) {
  uint32_t n = 0, key;
  memset(have, 0, LINK_MAX_EXPORTS * sizeof *have);
  for (uint32_t i = 0; i < c->nsym; i++)
    if (c->syms[i].shndx != SHN_UNDEF && !parse_export_name(c->syms[i].name, &key)) {
      if (!sym_is_code(c, &c->syms[i]))
        return fail(c, "export symbol %s is not in code", c->syms[i].name);
      have[key] = true;
      addrs[key] = c->syms[i].value;
    }
  for (uint32_t i = 0; i < c->opt->export_count; i++) {
    const link_export *e = &c->opt->exports[i];
    const lsym *s = find_sym(c, e->symbol);
    if (e->key >= LINK_MAX_EXPORTS) return fail(c, "export key %u >= %u", e->key, LINK_MAX_EXPORTS);
    if (!s) return fail(c, "--export %u=%s: no such symbol", e->key, e->symbol);
    if (!sym_is_code(c, s)) return fail(c, "--export %u=%s: the symbol is not in code", e->key, e->symbol);
    have[e->key] = true;
    addrs[e->key] = s->value;
  }
  if (!have[0]) {
    const lsym *s = find_sym(c, "_start");
    if (!s || !sym_is_code(c, s))
      return fail(c, "no entry point: define _start, export 0 (__nub_export_0) or pass --export 0=SYMBOL");
    have[0] = true;
    addrs[0] = s->value;
  }
  for (uint32_t k = 0; k < LINK_MAX_EXPORTS; k++)
    if (have[k]) {
      n = k + 1;
      char what[64];
      snprintf(what, sizeof what, "export %u", k);
      if (mark_target(c, NULL, addrs[k], F_TARGET, what)) return -1;
    }
  *count = n;
  return 0;
}

int link_program(const uint8_t *elf, size_t len, const link_options *opt, uint8_t **out,
                 size_t *out_len, link_stats *stats, char *msg, size_t msg_len) {
  ctx c;
  image im;
  uint64_t exp_addr[LINK_MAX_EXPORTS];
  bool exp_have[LINK_MAX_EXPORTS];
  uint32_t nexp = 0;
  uint8_t *blob = NULL;
  size_t blob_len = 0;
  nub_pvm_error perr;
  int rc = -1;
  memset(&c, 0, sizeof c);
  memset(&im, 0, sizeof im);
  c.elf = elf;
  c.end = elf + len;
  c.opt = opt;
  c.msg = msg;
  c.msg_len = msg_len;
  *out = NULL;
  *out_len = 0;
  if (read_elf(&c) || decode_text(&c) || scan_relocs(&c) || scan_targets(&c) ||
      collect_exports(&c, exp_addr, exp_have, &nexp))
    goto fail;
  const lsym *scratch = find_sym(&c, "__nub_scratch");
  if (scratch) c.scratch = scratch->value;
  for (uint32_t i = 0; i < c.nins; i++)
    if (c.ins[i].flags & F_JT) c.ins[i].jt = c.njt++;
  if (build_data(&c, &im)) goto fail;
  if (opt->generic && (im.ro_len || im.rw_len)) {   /* zero pages are the embedder's to map */
    fail(&c, "--format generic carries code only, but the program has %u bytes of read-only "
             "data and %u bytes of read-write data: use --format spi", im.ro_len, im.rw_len);
    goto fail;
  }
  if (opt->stack_size >= 0) {
    im.stack_size = (uint32_t)opt->stack_size;
  } else {
    const lsym *ss = find_sym(&c, "__nub_stack_size");
    im.stack_size = ss ? (uint32_t)ss->value : LINK_DEFAULT_STACK;
    if (ss && ss->value >= (1u << 24)) {
      fail(&c, "__nub_stack_size %llu does not fit the SPI stack field (< 2^24)",
           (unsigned long long)ss->value);
      goto fail;
    }
  }
  if (!(c.b = nub_pvm_builder_new(opt->profile))) { fail(&c, "out of memory"); goto fail; }
  for (uint32_t i = 0; i < c.nins; i++)
    if (c.ins[i].flags & F_TARGET) c.ins[i].label = nub_pvm_builder_label(c.b);
  /* the export table: slot k at pc 5k, a jump with a 4-byte offset or a padded trap */
  for (uint32_t k = 0; k < nexp; k++) {
    if (exp_have[k]) {
      nub_pvm_encoding enc = PVM_ENCODING_AUTO;
      enc.width_x = 4;
      nub_pvm_builder_branch_enc(c.b, PVM_OP_JUMP, 0, 0, 0, ins_at(&c, exp_addr[k])->label, &enc);
    } else {
      static const uint8_t pad[4] = {0};
      nub_pvm_builder_insn(c.b, PVM_OP_TRAP, 0, 0, 0, 0, 0);
      nub_pvm_builder_bytes(c.b, pad, sizeof pad);
    }
  }
  c.open = false;
  for (uint32_t i = 0; i < c.nins; i++) {
    lins *in = &c.ins[i];
    if (in->flags & F_TARGET) {
      if (c.open) emit(&c, PVM_OP_FALLTHROUGH, 0, 0, 0, 0, 0);
      nub_pvm_builder_bind(c.b, in->label);
    }
    if (c.skip_next) {
      c.skip_next = false;
      continue;
    }
    if (translate(&c, i)) goto fail;
  }
  if (c.open) emit(&c, PVM_OP_TRAP, 0, 0, 0, 0, 0);   /* running off the end */
  for (uint32_t i = 0; i < c.nins; i++)
    if (c.ins[i].flags & F_JT) nub_pvm_builder_jump_entry(c.b, c.ins[i].label);
  if (nub_pvm_builder_finish(c.b, &blob, &blob_len, &perr)) {
    fail(&c, "building the PVM code: %s", perr.msg);
    goto fail;
  }
  if (opt->generic) {
    *out = blob;
    *out_len = blob_len;
    blob = NULL;
  } else {
    nub_pvm_spi spi = {im.ro, im.ro_len, im.rw, im.rw_len, im.heap_pages, im.stack_size,
                   blob, (uint32_t)blob_len};
    nub_pvm_spi_layout lay;
    if (nub_pvm_spi_layout_compute(&spi, 0, &lay, &perr) || nub_pvm_spi_encode(&spi, out, out_len, &perr)) {
      fail(&c, "%s", perr.msg);
      goto fail;
    }
  }
  if (stats) {
    stats->rv_insns = c.nins;
    stats->pvm_bytes = (uint32_t)blob_len;
    stats->jump_entries = c.njt;
    stats->exports = nexp;
    stats->ro_len = im.ro_len;
    stats->rw_len = im.rw_len;
    stats->heap_pages = im.heap_pages;
    stats->stack_size = im.stack_size;
  }
  rc = 0;
fail:
  free(blob);
  free(im.ro);
  free(im.rw);
  nub_pvm_builder_free(c.b);
  free(c.secs);
  free(c.syms);
  free(c.ins);
  free(c.slot);
  free(c.cptr);
  return rc;
}
