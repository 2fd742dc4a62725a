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

// Column l of stage 2: the scaled sums m'_ξ at DI + 64·ξ for ξ = l, 6 + l, …, 30 + l (byte
// offsets o0..o5) into Z0..Z5, and Hᵀ of them into y0, y1, y2.
#define WINO4_GO_COL(o0, o1, o2, o3, o4, o5, y0, y1, y2) \
	VMOVUPS o0(DI), Z0 \
	VMOVUPS o1(DI), Z1 \
	VMOVUPS o2(DI), Z2 \
	VMOVUPS o3(DI), Z3 \
	VMOVUPS o4(DI), Z4 \
	VMOVUPS o5(DI), Z5 \
	WINO4_HT(Z0, Z1, Z2, Z3, Z4, Z5, y0, y1, y2)

// Row k of stage 2: H of t_k0..t_k5 stored at AX, AX + ks and AX + 2·ks (R9 = ks bytes), AX
// advanced by 3·ks.
#define WINO4_GO_ROW(t0, t1, t2, t3, t4, t5) \
	WINO4_HT(t0, t1, t2, t3, t4, t5, Z0, Z1, Z2) \
	VMOVUPS Z0, (AX) \
	ADDQ    R9, AX \
	VMOVUPS Z1, (AX) \
	ADDQ    R9, AX \
	VMOVUPS Z2, (AX) \
	ADDQ    R9, AX

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
	// Stage 2: Hᵀ on the columns (t_kl in Z(6 + 6k + l)), then H on the rows into dw.
	WINO4_GO_COL(0, 384, 768, 1152, 1536, 1920, Z6, Z12, Z18)
	WINO4_GO_COL(64, 448, 832, 1216, 1600, 1984, Z7, Z13, Z19)
	WINO4_GO_COL(128, 512, 896, 1280, 1664, 2048, Z8, Z14, Z20)
	WINO4_GO_COL(192, 576, 960, 1344, 1728, 2112, Z9, Z15, Z21)
	WINO4_GO_COL(256, 640, 1024, 1408, 1792, 2176, Z10, Z16, Z22)
	WINO4_GO_COL(320, 704, 1088, 1472, 1856, 2240, Z11, Z17, Z23)
	MOVQ DX, AX
	WINO4_GO_ROW(Z6, Z7, Z8, Z9, Z10, Z11)
	WINO4_GO_ROW(Z12, Z13, Z14, Z15, Z16, Z17)
	WINO4_GO_ROW(Z18, Z19, Z20, Z21, Z22, Z23)
	ADDQ $64, R8
	ADDQ $64, DX
	DECQ CX
	JNZ  w4go_group
w4go_done:
	VZEROUPPER
	RET
