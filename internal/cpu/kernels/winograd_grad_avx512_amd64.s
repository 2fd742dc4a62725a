//go:build amd64 && !purego

#include "textflag.h"

// The output transform of the Winograd F(3×3, 4×4) weight gradient (wino4FilterOutput) on groups
// of 16 channels, the parts' sums M_ξ added first, with the operations of the Go code in the same
// order: the multiplications by 2 and 4 are exact, so the fused multiply-adds round as its
// separate ones do.

// The one-dimensional integer transform y = Hᵀ·m of m0..m5 into y0, y1, y2 (Z30 = 4, Z31 = 2;
// Z24..Z27 scratch): a = m1 + m2, b = m1 − m2, c = m3 + m4, d = m3 − m4,
// y0 = (m0 + a) + c, y1 = b + 2·d, y2 = (a + 4·c) + m5.
#define WINO4_HT(m0, m1, m2, m3, m4, m5, y0, y1, y2) \
	VADDPS      m2, m1, Z24 \
	VSUBPS      m2, m1, Z25 \
	VADDPS      m4, m3, Z26 \
	VSUBPS      m4, m3, Z27 \
	VADDPS      Z24, m0, y0 \
	VADDPS      Z26, y0, y0 \
	VMOVAPS     Z25, y1 \
	VFMADD231PS Z27, Z31, y1 \
	VMOVAPS     Z24, y2 \
	VFMADD231PS Z26, Z30, y2 \
	VADDPS      m5, y2, y2

// func wino4GradOutputAVX512(m *float32, xs, parts, ps int, scale, dw *float32, ks, n16 int, scratch *float32)
// For each of n16 groups of 16 channels c: s_ξ = Σ_{q < parts} m[q·ps + ξ·xs + c] (in order of q),
// m'_ξ = s_ξ·scale[ξ] (staged in scratch, 36·16 floats), and dw[(3k + l)·ks + c] =
// (Hᵀ·m'·H)[k][l]; strides in elements, parts ≥ 1.
TEXT ·wino4GradOutputAVX512(SB), NOSPLIT, $0-72
	MOVQ m+0(FP), R8
	MOVQ xs+8(FP), R12
	SHLQ $2, R12
	MOVQ parts+16(FP), R15
	DECQ R15
	MOVQ ps+24(FP), R13
	SHLQ $2, R13
	MOVQ scale+32(FP), R14
	MOVQ dw+40(FP), DX
	MOVQ ks+48(FP), R9
	SHLQ $2, R9
	MOVQ n16+56(FP), CX
	MOVQ scratch+64(FP), DI
	MOVL $0x40800000, AX
	VPBROADCASTD AX, Z30
	MOVL $0x40000000, AX
	VPBROADCASTD AX, Z31
	TESTQ CX, CX
	JZ   w4go_done
w4go_group:
	// Stage 1: the scaled sums into scratch.
	MOVQ R8, SI
	XORQ BX, BX
w4go_xi:
	VMOVUPS (SI), Z0
	MOVQ SI, AX
	MOVQ R15, R10
	TESTQ R10, R10
	JZ   w4go_scale
w4go_part:
	ADDQ R13, AX
	VADDPS (AX), Z0, Z0
	DECQ R10
	JNZ  w4go_part
w4go_scale:
	VBROADCASTSS (R14)(BX*4), Z1
	VMULPS Z1, Z0, Z0
	MOVQ BX, AX
	SHLQ $6, AX
	VMOVUPS Z0, (DI)(AX*1)
	ADDQ R12, SI
	INCQ BX
	CMPQ BX, $36
	JNE  w4go_xi
	VMOVUPS 0(DI), Z0
	VMOVUPS 384(DI), Z1
	VMOVUPS 768(DI), Z2
	VMOVUPS 1152(DI), Z3
	VMOVUPS 1536(DI), Z4
	VMOVUPS 1920(DI), Z5
	WINO4_HT(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z12, Z18)
	VMOVUPS 64(DI), Z0
	VMOVUPS 448(DI), Z1
	VMOVUPS 832(DI), Z2
	VMOVUPS 1216(DI), Z3
	VMOVUPS 1600(DI), Z4
	VMOVUPS 1984(DI), Z5
	WINO4_HT(Z0, Z1, Z2, Z3, Z4, Z5, Z7, Z13, Z19)
	VMOVUPS 128(DI), Z0
	VMOVUPS 512(DI), Z1
	VMOVUPS 896(DI), Z2
	VMOVUPS 1280(DI), Z3
	VMOVUPS 1664(DI), Z4
	VMOVUPS 2048(DI), Z5
	WINO4_HT(Z0, Z1, Z2, Z3, Z4, Z5, Z8, Z14, Z20)
	VMOVUPS 192(DI), Z0
	VMOVUPS 576(DI), Z1
	VMOVUPS 960(DI), Z2
	VMOVUPS 1344(DI), Z3
	VMOVUPS 1728(DI), Z4
	VMOVUPS 2112(DI), Z5
	WINO4_HT(Z0, Z1, Z2, Z3, Z4, Z5, Z9, Z15, Z21)
	VMOVUPS 256(DI), Z0
	VMOVUPS 640(DI), Z1
	VMOVUPS 1024(DI), Z2
	VMOVUPS 1408(DI), Z3
	VMOVUPS 1792(DI), Z4
	VMOVUPS 2176(DI), Z5
	WINO4_HT(Z0, Z1, Z2, Z3, Z4, Z5, Z10, Z16, Z22)
	VMOVUPS 320(DI), Z0
	VMOVUPS 704(DI), Z1
	VMOVUPS 1088(DI), Z2
	VMOVUPS 1472(DI), Z3
	VMOVUPS 1856(DI), Z4
	VMOVUPS 2240(DI), Z5
	WINO4_HT(Z0, Z1, Z2, Z3, Z4, Z5, Z11, Z17, Z23)
	MOVQ DX, AX
	WINO4_HT(Z6, Z7, Z8, Z9, Z10, Z11, Z0, Z1, Z2)
	VMOVUPS Z0, (AX)
	ADDQ R9, AX
	VMOVUPS Z1, (AX)
	ADDQ R9, AX
	VMOVUPS Z2, (AX)
	ADDQ R9, AX
	WINO4_HT(Z12, Z13, Z14, Z15, Z16, Z17, Z0, Z1, Z2)
	VMOVUPS Z0, (AX)
	ADDQ R9, AX
	VMOVUPS Z1, (AX)
	ADDQ R9, AX
	VMOVUPS Z2, (AX)
	ADDQ R9, AX
	WINO4_HT(Z18, Z19, Z20, Z21, Z22, Z23, Z0, Z1, Z2)
	VMOVUPS Z0, (AX)
	ADDQ R9, AX
	VMOVUPS Z1, (AX)
	ADDQ R9, AX
	VMOVUPS Z2, (AX)
	ADDQ R9, AX
	ADDQ $64, R8
	ADDQ $64, DX
	DECQ CX
	JNZ  w4go_group
w4go_done:
	VZEROUPPER
	RET
