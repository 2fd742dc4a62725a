//go:build amd64 && !purego

#include "textflag.h"

// One row i of the Winograd F(2×2, 3×3) input transform V = Bᵀ·d·B on 8 channels: r = d[ra] op d[rb]
// (the rows of Bᵀ·d: d0−d2, d1+d2, d2−d1, d1−d3), then V[i][0..3] = r0−r2, r1+r2, r2−r1, r1−r3.
// Column j of a d row is at row + j·cs (R9 = cs, R11 = 3·cs bytes); V[i][j] is stored at
// DI + j·ds (R10 = ds, R12 = 3·ds bytes), then DI advances by 4·ds (R13).
#define WINO_IN_ROW(ra, rb, op) \
	VMOVUPS (ra), Y0 \
	VMOVUPS (ra)(R9*1), Y1 \
	VMOVUPS (ra)(R9*2), Y2 \
	VMOVUPS (ra)(R11*1), Y3 \
	op (rb), Y0, Y0 \
	op (rb)(R9*1), Y1, Y1 \
	op (rb)(R9*2), Y2, Y2 \
	op (rb)(R11*1), Y3, Y3 \
	VSUBPS Y2, Y0, Y4 \
	VADDPS Y2, Y1, Y5 \
	VSUBPS Y1, Y2, Y6 \
	VSUBPS Y3, Y1, Y7 \
	VMOVUPS Y4, (DI) \
	VMOVUPS Y5, (DI)(R10*1) \
	VMOVUPS Y6, (DI)(R10*2) \
	VMOVUPS Y7, (DI)(R12*1) \
	ADDQ R13, DI

// func winoInputAVX(src *float32, rs, cs int, dst *float32, ds int, n8 int)
// For each of n8 groups of 8 channels: d[i][j] = src[i·rs + j·cs + c] (4×4 tile),
// dst[(4i+j)·ds + c] = (Bᵀ·d·B)[i][j]; strides in elements.
TEXT ·winoInputAVX(SB), NOSPLIT, $0-48
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
	MOVQ n8+40(FP), CX
	LEAQ (SI)(AX*2), BX
	LEAQ (BX)(AX*1), DX
	ADDQ SI, AX
	TESTQ CX, CX
	JZ   wino_in_done
wino_in_loop:
	MOVQ R8, DI
	WINO_IN_ROW(SI, BX, VSUBPS)
	WINO_IN_ROW(AX, BX, VADDPS)
	WINO_IN_ROW(BX, AX, VSUBPS)
	WINO_IN_ROW(AX, DX, VSUBPS)
	ADDQ $32, SI
	ADDQ $32, AX
	ADDQ $32, BX
	ADDQ $32, DX
	ADDQ $32, R8
	DECQ CX
	JNZ  wino_in_loop
wino_in_done:
	VZEROUPPER
	RET

// One column j of the output transform's first stage on 8 channels: with m_i = the values at
// the row pointers SI, AX, BX, DX, s0 = m0 + m1 + m2 into d0 and s1 = m1 − m2 − m3 into d1 (Aᵀ·m).
#define WINO_OUT_COL(d0, d1) \
	VMOVUPS (AX), Y8 \
	VADDPS (BX), Y8, Y9 \
	VSUBPS (BX), Y8, Y10 \
	VADDPS (SI), Y9, d0 \
	VSUBPS (DX), Y10, d1

// func winoOutputAVX(src *float32, ss int, dst *float32, rs, cs int, n8 int)
// For each of n8 groups of 8 channels: m[i][j] = src[(4i+j)·ss + c],
// dst[a·rs + b·cs + c] = (Aᵀ·m·A)[a][b] for a, b in {0, 1}; strides in elements.
TEXT ·winoOutputAVX(SB), NOSPLIT, $0-48
	MOVQ src+0(FP), SI
	MOVQ ss+8(FP), R9
	SHLQ $2, R9
	MOVQ dst+16(FP), DI
	MOVQ rs+24(FP), R12
	SHLQ $2, R12
	MOVQ cs+32(FP), R10
	SHLQ $2, R10
	LEAQ (R12)(R10*1), R13
	MOVQ n8+40(FP), CX
	// Row pointers: SI = m0j, AX = m1j, BX = m2j, DX = m3j (row i starts 4i·ss further).
	MOVQ R9, R11
	SHLQ $2, R11
	LEAQ (SI)(R11*1), AX
	LEAQ (AX)(R11*1), BX
	LEAQ (BX)(R11*1), DX
	TESTQ CX, CX
	JZ   wino_out_done
wino_out_loop:
	MOVQ SI, R8
	WINO_OUT_COL(Y0, Y4)
	ADDQ R9, SI
	ADDQ R9, AX
	ADDQ R9, BX
	ADDQ R9, DX
	WINO_OUT_COL(Y1, Y5)
	ADDQ R9, SI
	ADDQ R9, AX
	ADDQ R9, BX
	ADDQ R9, DX
	WINO_OUT_COL(Y2, Y6)
	ADDQ R9, SI
	ADDQ R9, AX
	ADDQ R9, BX
	ADDQ R9, DX
	WINO_OUT_COL(Y3, Y7)
	// Back to column 0, next 8 channels.
	MOVQ R8, SI
	ADDQ $32, SI
	LEAQ (SI)(R11*1), AX
	LEAQ (AX)(R11*1), BX
	LEAQ (BX)(R11*1), DX
	// y00 = s00+s01+s02, y01 = s01−s02−s03, y10 = s10+s11+s12, y11 = s11−s12−s13.
	VADDPS Y1, Y0, Y8
	VADDPS Y2, Y8, Y8
	VSUBPS Y2, Y1, Y9
	VSUBPS Y3, Y9, Y9
	VADDPS Y5, Y4, Y10
	VADDPS Y6, Y10, Y10
	VSUBPS Y6, Y5, Y11
	VSUBPS Y7, Y11, Y11
	VMOVUPS Y8, (DI)
	VMOVUPS Y9, (DI)(R10*1)
	VMOVUPS Y10, (DI)(R12*1)
	VMOVUPS Y11, (DI)(R13*1)
	ADDQ $32, DI
	DECQ CX
	JNZ  wino_out_loop
wino_out_done:
	VZEROUPPER
	RET

// Stores the four values of row i of the gradient-tile transform at DX + j·ds (R10 = ds,
// R12 = 3·ds bytes), then advances DX by 4·ds (R13).
#define WINO_DY_ROW(v0, v1, v2, v3) \
	VMOVUPS v0, (DX) \
	VMOVUPS v1, (DX)(R10*1) \
	VMOVUPS v2, (DX)(R10*2) \
	VMOVUPS v3, (DX)(R12*1) \
	ADDQ R13, DX

// The gradient-tile transform of the 8 channels at byte offset off from SI (row 0) and BX (row 1),
// column 1 R9 bytes further, stored from DI + off. Row i of A·e is (p, q) = (e0·), (e0·+e1·),
// (e0·−e1·), (−e1·); row i of the result is [p, p+q, p−q, −q], negations computed as 0 − x
// (Y15 = 0).
#define WINO_DY8(off) \
	VMOVUPS off(SI), Y0 \
	VMOVUPS off(SI)(R9*1), Y1 \
	VMOVUPS off(BX), Y2 \
	VMOVUPS off(BX)(R9*1), Y3 \
	LEAQ off(DI), DX \
	VADDPS Y1, Y0, Y4 \
	VSUBPS Y1, Y0, Y5 \
	VSUBPS Y1, Y15, Y6 \
	WINO_DY_ROW(Y0, Y4, Y5, Y6) \
	VADDPS Y2, Y0, Y7 \
	VADDPS Y3, Y1, Y8 \
	VADDPS Y8, Y7, Y4 \
	VSUBPS Y8, Y7, Y5 \
	VSUBPS Y8, Y15, Y6 \
	WINO_DY_ROW(Y7, Y4, Y5, Y6) \
	VSUBPS Y2, Y0, Y7 \
	VSUBPS Y3, Y1, Y8 \
	VADDPS Y8, Y7, Y4 \
	VSUBPS Y8, Y7, Y5 \
	VSUBPS Y8, Y15, Y6 \
	WINO_DY_ROW(Y7, Y4, Y5, Y6) \
	VSUBPS Y2, Y15, Y7 \
	VADDPS Y3, Y2, Y8 \
	VSUBPS Y8, Y15, Y4 \
	VSUBPS Y2, Y3, Y5 \
	WINO_DY_ROW(Y7, Y4, Y5, Y3)

// func winoDyAVX(src *float32, rs, cs int, dst *float32, ds int, n8 int)
// For each of n8 groups of 8 channels: e[a][b] = src[a·rs + b·cs + c] (2×2 tile),
// dst[(4i+j)·ds + c] = (A·e·Aᵀ)[i][j], A = [1 0; 1 1; 1 −1; 0 −1]; strides in elements.
TEXT ·winoDyAVX(SB), NOSPLIT, $0-48
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
	MOVQ n8+40(FP), CX
	VXORPS Y15, Y15, Y15
	TESTQ CX, CX
	JZ   wino_dy_done
wino_dy_loop:
	LEAQ (SI)(AX*1), BX
	WINO_DY8(0)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  wino_dy_loop
wino_dy_done:
	VZEROUPPER
	RET

// func winoDyPanelsAVX(src *float32, rs, cs int, dst *float32, ds, ps int, n16 int)
// winoDyAVX on n16 groups of 16 channels whose outputs lie ps elements apart: channel c of the
// tile goes to dst[(c/16)·ps + (4i+j)·ds + c%16] (the packed B panels of the micro-kernel).
TEXT ·winoDyPanelsAVX(SB), NOSPLIT, $0-56
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
	VXORPS Y15, Y15, Y15
	TESTQ CX, CX
	JZ   wino_dyp_done
	LEAQ (SI)(AX*1), BX
wino_dyp_loop:
	WINO_DY8(0)
	WINO_DY8(32)
	ADDQ $64, SI
	ADDQ $64, BX
	ADDQ R11, DI
	DECQ CX
	JNZ  wino_dyp_loop
wino_dyp_done:
	VZEROUPPER
	RET
