/* Classic-BPF interpreter, validator and action-cache emulation for seccomp programs. */
#include <stdio.h>
#include <string.h>

#include "bpf_emu.h"

#define MAX_INSNS 4096
#define DATA_LEN 64 /* sizeof(struct seccomp_data) */
#define MEMWORDS 16
#define RET_ALLOW 0x7fff0000u

static int allowed_code(uint16_t code)
{
	switch (code) {
	case BPF_LD | BPF_W | BPF_ABS:
	case BPF_LD | BPF_W | BPF_LEN:
	case BPF_LDX | BPF_W | BPF_LEN:
	case BPF_RET | BPF_K:
	case BPF_RET | BPF_A:
	case BPF_ALU | BPF_ADD | BPF_K: case BPF_ALU | BPF_ADD | BPF_X:
	case BPF_ALU | BPF_SUB | BPF_K: case BPF_ALU | BPF_SUB | BPF_X:
	case BPF_ALU | BPF_MUL | BPF_K: case BPF_ALU | BPF_MUL | BPF_X:
	case BPF_ALU | BPF_DIV | BPF_K: case BPF_ALU | BPF_DIV | BPF_X:
	case BPF_ALU | BPF_AND | BPF_K: case BPF_ALU | BPF_AND | BPF_X:
	case BPF_ALU | BPF_OR | BPF_K: case BPF_ALU | BPF_OR | BPF_X:
	case BPF_ALU | BPF_XOR | BPF_K: case BPF_ALU | BPF_XOR | BPF_X:
	case BPF_ALU | BPF_LSH | BPF_K: case BPF_ALU | BPF_LSH | BPF_X:
	case BPF_ALU | BPF_RSH | BPF_K: case BPF_ALU | BPF_RSH | BPF_X:
	case BPF_ALU | BPF_NEG:
	case BPF_LD | BPF_IMM:
	case BPF_LDX | BPF_IMM:
	case BPF_MISC | BPF_TAX:
	case BPF_MISC | BPF_TXA:
	case BPF_LD | BPF_MEM:
	case BPF_LDX | BPF_MEM:
	case BPF_ST:
	case BPF_STX:
	case BPF_JMP | BPF_JA:
	case BPF_JMP | BPF_JEQ | BPF_K: case BPF_JMP | BPF_JEQ | BPF_X:
	case BPF_JMP | BPF_JGE | BPF_K: case BPF_JMP | BPF_JGE | BPF_X:
	case BPF_JMP | BPF_JGT | BPF_K: case BPF_JMP | BPF_JGT | BPF_X:
	case BPF_JMP | BPF_JSET | BPF_K: case BPF_JMP | BPF_JSET | BPF_X:
		return 1;
	}
	return 0;
}

int sb_bpf_validate(const struct sock_filter *prog, uint32_t len, char *err, uint32_t errlen)
{
	if (len == 0 || len > MAX_INSNS) {
		snprintf(err, errlen, "program length %u outside 1..%d", len, MAX_INSNS);
		return -1;
	}
	for (uint32_t pc = 0; pc < len; pc++) {
		const struct sock_filter *f = &prog[pc];
		uint16_t code = f->code;

		if (!allowed_code(code)) {
			snprintf(err, errlen, "insn %u: opcode 0x%04x not allowed in seccomp", pc, code);
			return -1;
		}
		switch (code) {
		case BPF_LD | BPF_W | BPF_ABS:
			if (f->k >= DATA_LEN || (f->k & 3)) {
				snprintf(err, errlen, "insn %u: load offset %u outside seccomp_data", pc,
					 f->k);
				return -1;
			}
			break;
		case BPF_ALU | BPF_DIV | BPF_K:
			if (f->k == 0) {
				snprintf(err, errlen, "insn %u: division by zero", pc);
				return -1;
			}
			break;
		case BPF_ALU | BPF_LSH | BPF_K:
		case BPF_ALU | BPF_RSH | BPF_K:
			if (f->k >= 32) {
				snprintf(err, errlen, "insn %u: shift by %u", pc, f->k);
				return -1;
			}
			break;
		case BPF_LD | BPF_MEM: case BPF_LDX | BPF_MEM: case BPF_ST: case BPF_STX:
			if (f->k >= MEMWORDS) {
				snprintf(err, errlen, "insn %u: scratch slot %u", pc, f->k);
				return -1;
			}
			break;
		case BPF_JMP | BPF_JA:
			if (f->k >= len - pc - 1) {
				snprintf(err, errlen, "insn %u: ja out of range", pc);
				return -1;
			}
			break;
		default:
			if (BPF_CLASS(code) == BPF_JMP &&
			    (pc + 1 + f->jt >= len || pc + 1 + f->jf >= len)) {
				snprintf(err, errlen, "insn %u: jump out of range", pc);
				return -1;
			}
		}
	}
	if (BPF_CLASS(prog[len - 1].code) != BPF_RET) {
		snprintf(err, errlen, "last instruction is not a return");
		return -1;
	}
	return 0;
}

static uint32_t load_word(const struct sb_seccomp_data *d, uint32_t off)
{
	uint32_t w[DATA_LEN / 4];

	memcpy(w, d, sizeof(w));
	return w[off / 4];
}

uint32_t sb_bpf_run(const struct sock_filter *prog, uint32_t len, const struct sb_seccomp_data *data,
		    uint32_t *executed)
{
	uint32_t A = 0, X = 0, M[MEMWORDS] = {0}, pc = 0, steps = 0;
	char err[128];

	if (executed)
		*executed = 0;
	if (sb_bpf_validate(prog, len, err, sizeof(err)) < 0)
		return 0;
	while (pc < len) {
		const struct sock_filter *f = &prog[pc++];
		uint32_t k = f->k;

		steps++;
		switch (f->code) {
		case BPF_LD | BPF_W | BPF_ABS: A = load_word(data, k); break;
		case BPF_LD | BPF_W | BPF_LEN: A = DATA_LEN; break;
		case BPF_LDX | BPF_W | BPF_LEN: X = DATA_LEN; break;
		case BPF_LD | BPF_IMM: A = k; break;
		case BPF_LDX | BPF_IMM: X = k; break;
		case BPF_LD | BPF_MEM: A = M[k]; break;
		case BPF_LDX | BPF_MEM: X = M[k]; break;
		case BPF_ST: M[k] = A; break;
		case BPF_STX: M[k] = X; break;
		case BPF_MISC | BPF_TAX: X = A; break;
		case BPF_MISC | BPF_TXA: A = X; break;
		case BPF_ALU | BPF_ADD | BPF_K: A += k; break;
		case BPF_ALU | BPF_ADD | BPF_X: A += X; break;
		case BPF_ALU | BPF_SUB | BPF_K: A -= k; break;
		case BPF_ALU | BPF_SUB | BPF_X: A -= X; break;
		case BPF_ALU | BPF_MUL | BPF_K: A *= k; break;
		case BPF_ALU | BPF_MUL | BPF_X: A *= X; break;
		case BPF_ALU | BPF_DIV | BPF_K: A /= k; break;
		case BPF_ALU | BPF_DIV | BPF_X: A = X ? A / X : 0; if (!X) goto out; break;
		case BPF_ALU | BPF_AND | BPF_K: A &= k; break;
		case BPF_ALU | BPF_AND | BPF_X: A &= X; break;
		case BPF_ALU | BPF_OR | BPF_K: A |= k; break;
		case BPF_ALU | BPF_OR | BPF_X: A |= X; break;
		case BPF_ALU | BPF_XOR | BPF_K: A ^= k; break;
		case BPF_ALU | BPF_XOR | BPF_X: A ^= X; break;
		case BPF_ALU | BPF_LSH | BPF_K: A <<= k; break;
		case BPF_ALU | BPF_LSH | BPF_X: A = X < 32 ? A << X : 0; break;
		case BPF_ALU | BPF_RSH | BPF_K: A >>= k; break;
		case BPF_ALU | BPF_RSH | BPF_X: A = X < 32 ? A >> X : 0; break;
		case BPF_ALU | BPF_NEG: A = -A; break;
		case BPF_JMP | BPF_JA: pc += k; break;
		case BPF_JMP | BPF_JEQ | BPF_K: pc += (A == k) ? f->jt : f->jf; break;
		case BPF_JMP | BPF_JEQ | BPF_X: pc += (A == X) ? f->jt : f->jf; break;
		case BPF_JMP | BPF_JGE | BPF_K: pc += (A >= k) ? f->jt : f->jf; break;
		case BPF_JMP | BPF_JGE | BPF_X: pc += (A >= X) ? f->jt : f->jf; break;
		case BPF_JMP | BPF_JGT | BPF_K: pc += (A > k) ? f->jt : f->jf; break;
		case BPF_JMP | BPF_JGT | BPF_X: pc += (A > X) ? f->jt : f->jf; break;
		case BPF_JMP | BPF_JSET | BPF_K: pc += (A & k) ? f->jt : f->jf; break;
		case BPF_JMP | BPF_JSET | BPF_X: pc += (A & X) ? f->jt : f->jf; break;
		case BPF_RET | BPF_K:
			if (executed)
				*executed = steps;
			return k;
		case BPF_RET | BPF_A:
			if (executed)
				*executed = steps;
			return A;
		}
	}
out:
	/* division by zero at run time: the kernel's interpreter returns 0 */
	if (executed)
		*executed = steps;
	return 0;
}

int sb_bpf_const_allow(const struct sock_filter *prog, uint32_t len, uint32_t arch, uint32_t nr,
		       uint32_t *walked)
{
	uint32_t A = 0, steps = 0;
	int result = 0;

	for (uint32_t pc = 0; pc < len; pc++) {
		const struct sock_filter *f = &prog[pc];
		int taken;

		steps++;
		switch (f->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			if (f->k == 0)
				A = nr;
			else if (f->k == 4)
				A = arch;
			else
				goto done; /* argument or instruction-pointer load: not constant */
			break;
		case BPF_RET | BPF_K:
			result = f->k == RET_ALLOW;
			goto done;
		case BPF_JMP | BPF_JA:
			pc += f->k;
			break;
		case BPF_JMP | BPF_JEQ | BPF_K:
		case BPF_JMP | BPF_JGE | BPF_K:
		case BPF_JMP | BPF_JGT | BPF_K:
		case BPF_JMP | BPF_JSET | BPF_K:
			switch (BPF_OP(f->code)) {
			case BPF_JEQ: taken = A == f->k; break;
			case BPF_JGE: taken = A >= f->k; break;
			case BPF_JGT: taken = A > f->k; break;
			default: taken = (A & f->k) != 0; break;
			}
			pc += taken ? f->jt : f->jf;
			break;
		case BPF_ALU | BPF_AND | BPF_K:
			A &= f->k;
			break;
		default:
			goto done;
		}
	}
done:
	if (walked)
		*walked = steps;
	return result;
}
