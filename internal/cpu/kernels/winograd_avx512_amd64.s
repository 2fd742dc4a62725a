//go:build amd64 && !purego

#include "textflag.h"

// The 16-lane (AVX-512) forms of the transforms of winograd_amd64.s, on groups of 16 channels:
// the same additions and subtractions on each channel.

// One row i of the Winograd F(2×2, 3×3) input transform V = Bᵀ·d·B on 16 channels: r = d[ra] op d[rb]
// (the rows of Bᵀ·d: d0−d2, d1+d2, d2−d1, d1−d3), then V[i][0..3] = r0−r2, r1+r2, r2−r1, r1−r3.
// Column j of a d row is at row + j·cs (R9 = cs, R11 = 3·cs bytes); V[i][j] is stored at
// DI + j·ds (R10 = ds, R12 = 3·ds bytes), then DI advances by 4·ds (R13).
#define WINO_IN_ROW16(ra, rb, op) \
	VMOVUPS (ra), Z0 \
	VMOVUPS (ra)(R9*1), Z1 \
	VMOVUPS (ra)(R9*2), Z2 \
	VMOVUPS (ra)(R11*1), Z3 \
	op (rb), Z0, Z0 \
	op (rb)(R9*1), Z1, Z1 \
	op (rb)(R9*2), Z2, Z2 \
	op (rb)(R11*1), Z3, Z3 \
	VSUBPS Z2, Z0, Z4 \
	VADDPS Z2, Z1, Z5 \
	VSUBPS Z1, Z2, Z6 \
	VSUBPS Z3, Z1, Z7 \
	VMOVUPS Z4, (DI) \
	VMOVUPS Z5, (DI)(R10*1) \
	VMOVUPS Z6, (DI)(R10*2) \
	VMOVUPS Z7, (DI)(R12*1) \
	ADDQ R13, DI

// func winoInputAVX512(src *float32, rs, cs int, dst *float32, ds int, n16 int)
// For each of n16 groups of 16 channels: d[i][j] = src[i·rs + j·cs + c] (4×4 tile),
// dst[(4i+j)·ds + c] = (Bᵀ·d·B)[i][j]; strides in elements.
TEXT ·winoInputAVX512(SB), NOSPLIT, $0-48
	MOVQ src+0(FP), SI
	MOVQ rs+8(FP), AX
	SHLQ $2, AX
	MOVQ cs+16(FP), R9
	SHLQ $2, R9
	LEAQ (R9)(R9*2), R11
	MOVQ dst+24(FP), R8
	MOVQ ds+32(FP), R10
	SHLQ $2, R10
	LEAQ (R10)(R10*2), R12
	MOVQ R10, R13
	SHLQ $2, R13
	MOVQ n16+40(FP), CX
	LEAQ (SI)(AX*2), BX
	LEAQ (BX)(AX*1), DX
	ADDQ SI, AX
	TESTQ CX, CX
	JZ   wino_in_done_z
wino_in_loop_z:
	MOVQ R8, DI
	WINO_IN_ROW16(SI, BX, VSUBPS)
	WINO_IN_ROW16(AX, BX, VADDPS)
	WINO_IN_ROW16(BX, AX, VSUBPS)
	WINO_IN_ROW16(AX, DX, VSUBPS)
	ADDQ $64, SI
	ADDQ $64, AX
	ADDQ $64, BX
	ADDQ $64, DX
	ADDQ $64, R8
	DECQ CX
	JNZ  wino_in_loop_z
wino_in_done_z:
	VZEROUPPER
	RET

// One column j of the output transform's first stage on 16 channels: with m_i = the values at
// the row pointers SI, AX, BX, DX, s0 = m0 + m1 + m2 into d0 and s1 = m1 − m2 − m3 into d1 (Aᵀ·m).
#define WINO_OUT_COL16(d0, d1) \
	VMOVUPS (AX), Z8 \
	VADDPS (BX), Z8, Z9 \
	VSUBPS (BX), Z8, Z10 \
	VADDPS (SI), Z9, d0 \
	VSUBPS (DX), Z10, d1

// func winoOutputAVX512(src *float32, ss int, dst *float32, rs, cs int, n16 int)
// For each of n16 groups of 16 channels: m[i][j] = src[(4i+j)·ss + c],
// dst[a·rs + b·cs + c] = (Aᵀ·m·A)[a][b] for a, b in {0, 1}; strides in elements.
TEXT ·winoOutputAVX512(SB), NOSPLIT, $0-48
	MOVQ src+0(FP), SI
	MOVQ ss+8(FP), R9
	SHLQ $2, R9
	MOVQ dst+16(FP), DI
	MOVQ rs+24(FP), R12
	SHLQ $2, R12
	MOVQ cs+32(FP), R10
	SHLQ $2, R10
	LEAQ (R12)(R10*1), R13
	MOVQ n16+40(FP), CX
	// Row pointers: SI = m0j, AX = m1j, BX = m2j, DX = m3j (row i starts 4i·ss further).
	MOVQ R9, R11
	SHLQ $2, R11
	LEAQ (SI)(R11*1), AX
	LEAQ (AX)(R11*1), BX
	LEAQ (BX)(R11*1), DX
	TESTQ CX, CX
	JZ   wino_out_done_z
wino_out_loop_z:
	MOVQ SI, R8
	WINO_OUT_COL16(Z0, Z4)
	ADDQ R9, SI
	ADDQ R9, AX
	ADDQ R9, BX
	ADDQ R9, DX
	WINO_OUT_COL16(Z1, Z5)
	ADDQ R9, SI
	ADDQ R9, AX
	ADDQ R9, BX
	ADDQ R9, DX
	WINO_OUT_COL16(Z2, Z6)
	ADDQ R9, SI
	ADDQ R9, AX
	ADDQ R9, BX
	ADDQ R9, DX
	WINO_OUT_COL16(Z3, Z7)
	// Back to column 0, next 16 channels.
	MOVQ R8, SI
	ADDQ $64, SI
	LEAQ (SI)(R11*1), AX
	LEAQ (AX)(R11*1), BX
	LEAQ (BX)(R11*1), DX
	// y00 = s00+s01+s02, y01 = s01−s02−s03, y10 = s10+s11+s12, y11 = s11−s12−s13.
	VADDPS Z1, Z0, Z8
	VADDPS Z2, Z8, Z8
	VSUBPS Z2, Z1, Z9
	VSUBPS Z3, Z9, Z9
	VADDPS Z5, Z4, Z10
	VADDPS Z6, Z10, Z10
	VSUBPS Z6, Z5, Z11
	VSUBPS Z7, Z11, Z11
	VMOVUPS Z8, (DI)
	VMOVUPS Z9, (DI)(R10*1)
	VMOVUPS Z10, (DI)(R12*1)
	VMOVUPS Z11, (DI)(R13*1)
	ADDQ $64, DI
	DECQ CX
	JNZ  wino_out_loop_z
wino_out_done_z:
	VZEROUPPER
	RET

// Stores the four values of row i of the gradient-tile transform at DX + j·ds (R10 = ds,
// R12 = 3·ds bytes), then advances DX by 4·ds (R13).
#define WINO_DY_ROW16(v0, v1, v2, v3) \
	VMOVUPS v0, (DX) \
	VMOVUPS v1, (DX)(R10*1) \
	VMOVUPS v2, (DX)(R10*2) \
	VMOVUPS v3, (DX)(R12*1) \
	ADDQ R13, DX

// The gradient-tile transform of the 16 channels at byte offset off from SI (row 0) and BX (row 1),
// column 1 R9 bytes further, stored from DI + off. Row i of A·e is (p, q) = (e0·), (e0·+e1·),
// (e0·−e1·), (−e1·); row i of the result is [p, p+q, p−q, −q], negations computed as 0 − x
// (Z15 = 0).
#define WINO_DY16(off) \
	VMOVUPS off(SI), Z0 \
	VMOVUPS off(SI)(R9*1), Z1 \
	VMOVUPS off(BX), Z2 \
	VMOVUPS off(BX)(R9*1), Z3 \
	LEAQ off(DI), DX \
	VADDPS Z1, Z0, Z4 \
	VSUBPS Z1, Z0, Z5 \
	VSUBPS Z1, Z15, Z6 \
	WINO_DY_ROW16(Z0, Z4, Z5, Z6) \
	VADDPS Z2, Z0, Z7 \
	VADDPS Z3, Z1, Z8 \
	VADDPS Z8, Z7, Z4 \
	VSUBPS Z8, Z7, Z5 \
	VSUBPS Z8, Z15, Z6 \
	WINO_DY_ROW16(Z7, Z4, Z5, Z6) \
	VSUBPS Z2, Z0, Z7 \
	VSUBPS Z3, Z1, Z8 \
	VADDPS Z8, Z7, Z4 \
	VSUBPS Z8, Z7, Z5 \
	VSUBPS Z8, Z15, Z6 \
	WINO_DY_ROW16(Z7, Z4, Z5, Z6) \
	VSUBPS Z2, Z15, Z7 \
	VADDPS Z3, Z2, Z8 \
	VSUBPS Z8, Z15, Z4 \
	VSUBPS Z2, Z3, Z5 \
	WINO_DY_ROW16(Z7, Z4, Z5, Z3)

// func winoDyAVX512(src *float32, rs, cs int, dst *float32, ds int, n16 int)
// For each of n16 groups of 16 channels: e[a][b] = src[a·rs + b·cs + c] (2×2 tile),
// dst[(4i+j)·ds + c] = (A·e·Aᵀ)[i][j], A = [1 0; 1 1; 1 −1; 0 −1]; strides in elements.
TEXT ·winoDyAVX512(SB), NOSPLIT, $0-48
	MOVQ src+0(FP), SI
	MOVQ rs+8(FP), AX
	SHLQ $2, AX
	MOVQ cs+16(FP), R9
	SHLQ $2, R9
	MOVQ dst+24(FP), DI
	MOVQ ds+32(FP), R10
	SHLQ $2, R10
	LEAQ (R10)(R10*2), R12
	MOVQ R10, R13
	SHLQ $2, R13
	MOVQ n16+40(FP), CX
	VPXORD Z15, Z15, Z15
	TESTQ CX, CX
	JZ   wino_dy_done_z
wino_dy_loop_z:
	LEAQ (SI)(AX*1), BX
	WINO_DY16(0)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  wino_dy_loop_z
wino_dy_done_z:
	VZEROUPPER
	RET

// func winoDyPanelsAVX512(src *float32, rs, cs int, dst *float32, ds, ps int, n16 int)
// winoDyAVX512 on n16 groups of 16 channels whose outputs lie ps elements apart: channel c of the
// tile goes to dst[(c/16)·ps + (4i+j)·ds + c%16] (the packed B panels of the micro-kernel).
TEXT ·winoDyPanelsAVX512(SB), NOSPLIT, $0-56
	MOVQ src+0(FP), SI
	MOVQ rs+8(FP), AX
	SHLQ $2, AX
	MOVQ cs+16(FP), R9
	SHLQ $2, R9
	MOVQ dst+24(FP), DI
	MOVQ ds+32(FP), R10
	SHLQ $2, R10
	LEAQ (R10)(R10*2), R12
	MOVQ R10, R13
	SHLQ $2, R13
	MOVQ ps+40(FP), R11
	SHLQ $2, R11
	MOVQ n16+48(FP), CX
	VPXORD Z15, Z15, Z15
	TESTQ CX, CX
	JZ   wino_dyp_done_z
	LEAQ (SI)(AX*1), BX
wino_dyp_loop_z:
	WINO_DY16(0)
	ADDQ $64, SI
	ADDQ $64, BX
	ADDQ R11, DI
	DECQ CX
	JNZ  wino_dyp_loop_z
wino_dyp_done_z:
	VZEROUPPER
	RET
