//go:build amd64 && !purego

#include "textflag.h"

// Winograd F(4×4, 3×3) tile transforms on groups of 16 channels (zmm registers), with the
// operations of wino4InputGo and wino4OutputGo in the same order: every multiplication is by a
// power of two (exact), so the fused multiply-adds round as the Go code's separate ones do.

// The one-dimensional input transform r = Bᵀ·d (wino4In1) on Z0..Z5 = d0..d5, Z30 = 4, Z31 = 2:
// r0..r5 in Z8, Z9, Z11, Z13, Z6, Z14 (Z7, Z10, Z12 scratch).
#define WINO4_IN1 \
	VSUBPS       Z2, Z4, Z6 \  // p = d4 − d2
	VSUBPS       Z1, Z3, Z7 \  // q = d3 − d1
	VSUBPS       Z2, Z0, Z8 \
	VFMADD213PS  Z6, Z30, Z8 \ // r0 = 4·(d0 − d2) + p
	VADDPS       Z3, Z4, Z9 \
	VADDPS       Z2, Z1, Z10 \
	VFNMADD231PS Z10, Z30, Z9 \ // r1 = (d4 + d3) − 4·(d1 + d2)
	VSUBPS       Z3, Z4, Z11 \
	VSUBPS       Z2, Z1, Z12 \
	VFMADD231PS  Z12, Z30, Z11 \ // r2 = (d4 − d3) + 4·(d1 − d2)
	VMOVAPS      Z6, Z13 \
	VFMADD231PS  Z7, Z31, Z13 \ // r3 = p + 2·q
	VFNMADD231PS Z7, Z31, Z6 \ // r4 = p − 2·q
	VSUBPS       Z3, Z5, Z14 \
	VFNMADD231PS Z7, Z30, Z14  // r5 = (d5 − d3) − 4·q

// Row i of stage 1: d_j at BX + j·cs (R9 = cs, R11 = 3·cs, R12 = 5·cs bytes); r_j stored at
// DI + j·ds (R10 = ds, R13 = 3·ds, DX = 5·ds bytes).
#define WINO4_IN_ROW \
	VMOVUPS (BX), Z0 \
	VMOVUPS (BX)(R9*1), Z1 \
	VMOVUPS (BX)(R9*2), Z2 \
	VMOVUPS (BX)(R11*1), Z3 \
	VMOVUPS (BX)(R9*4), Z4 \
	VMOVUPS (BX)(R12*1), Z5 \
	WINO4_IN1 \
	VMOVUPS Z8, (DI) \
	VMOVUPS Z9, (DI)(R10*1) \
	VMOVUPS Z11, (DI)(R10*2) \
	VMOVUPS Z13, (DI)(R13*1) \
	VMOVUPS Z6, (DI)(R10*4) \
	VMOVUPS Z14, (DI)(DX*1) \
	ADDQ AX, BX \
	ADDQ R14, DI

// Column j of stage 2, in place: the values at DI + i·6·ds (R14 = 6·ds, R15 = 18·ds bytes).
#define WINO4_IN_COL \
	LEAQ (DI)(R15*1), BX \
	VMOVUPS (DI), Z0 \
	VMOVUPS (DI)(R14*1), Z1 \
	VMOVUPS (DI)(R14*2), Z2 \
	VMOVUPS (BX), Z3 \
	VMOVUPS (DI)(R14*4), Z4 \
	VMOVUPS (BX)(R14*2), Z5 \
	WINO4_IN1 \
	VMOVUPS Z8, (DI) \
	VMOVUPS Z9, (DI)(R14*1) \
	VMOVUPS Z11, (DI)(R14*2) \
	VMOVUPS Z13, (BX) \
	VMOVUPS Z6, (DI)(R14*4) \
	VMOVUPS Z14, (BX)(R14*2) \
	ADDQ R10, DI

// func wino4InputAVX512(src *float32, rs, cs int, dst *float32, ds int, n16 int)
// For each of n16 groups of 16 channels: d[i][j] = src[i·rs + j·cs + c] (6×6 tile),
// dst[(6i+j)·ds + c] = (Bᵀ·d·B)[i][j]; strides in elements. Stage 1 writes d·B row by row into
// dst, stage 2 transforms dst's columns in place.
TEXT ·wino4InputAVX512(SB), NOSPLIT, $0-48
	MOVQ src+0(FP), SI
	MOVQ rs+8(FP), AX
	SHLQ $2, AX
	MOVQ cs+16(FP), R9
	SHLQ $2, R9
	LEAQ (R9)(R9*2), R11
	LEAQ (R9)(R9*4), R12
	MOVQ dst+24(FP), R8
	MOVQ ds+32(FP), R10
	SHLQ $2, R10
	LEAQ (R10)(R10*2), R13
	LEAQ (R10)(R10*4), DX
	LEAQ (R13)(R13*1), R14
	LEAQ (R14)(R14*2), R15
	MOVQ n16+40(FP), CX
	MOVL $0x40800000, BX
	VPBROADCASTD BX, Z30
	MOVL $0x40000000, BX
	VPBROADCASTD BX, Z31
	TESTQ CX, CX
	JZ   wino4_in_done
wino4_in_loop:
	MOVQ SI, BX
	MOVQ R8, DI
	WINO4_IN_ROW
	WINO4_IN_ROW
	WINO4_IN_ROW
	WINO4_IN_ROW
	WINO4_IN_ROW
	WINO4_IN_ROW
	MOVQ R8, DI
	WINO4_IN_COL
	WINO4_IN_COL
	WINO4_IN_COL
	WINO4_IN_COL
	WINO4_IN_COL
	WINO4_IN_COL
	ADDQ $64, SI
	ADDQ $64, R8
	DECQ CX
	JNZ  wino4_in_loop
wino4_in_done:
	VZEROUPPER
	RET

// func wino4InputMaskedAVX512(x *float32, off, rs, cs int, masks *[36]uint16, dst *float32, ds int, n16 int)
// wino4InputAVX512 on the tile d[i][j] = x[off + i·rs + j·cs + c] where masks[6i+j] is 0xFFFF
// and 0 where it is 0 (a border tile: positions in the padding are neither read nor need to lie
// in x; off may be negative). The zeroing masked loads give the transform exactly the zeros that
// a zero-padded copy of the tile would hold, so the bits are those of wino4InputAVX512 on it.
// Stage 1 runs row by row, every group of 16 channels of a row before the next row, so that
// the tile's six rows are read as six runs of contiguous memory; stage 2 then transforms dst's
// columns in place, group by group.
TEXT ·wino4InputMaskedAVX512(SB), NOSPLIT, $0-64
	MOVQ x+0(FP), SI
	MOVQ off+8(FP), AX
	LEAQ (SI)(AX*4), SI
	MOVQ rs+16(FP), DX
	SHLQ $2, DX
	MOVQ cs+24(FP), R9
	SHLQ $2, R9
	LEAQ (R9)(R9*2), R11
	LEAQ (R9)(R9*4), R12
	MOVQ dst+40(FP), R8
	MOVQ ds+48(FP), R10
	SHLQ $2, R10
	LEAQ (R10)(R10*2), R13
	LEAQ (R13)(R13*1), R14
	MOVQ masks+32(FP), AX
	MOVL $0x40800000, BX
	VPBROADCASTD BX, Z30
	MOVL $0x40000000, BX
	VPBROADCASTD BX, Z31
	CMPQ n16+56(FP), $0
	JLE  wino4_inm_done
	MOVQ $6, R15
wino4_inm_row:
	// Row i: d_j at BX + j·cs under the mask at AX + 2j; r_j to DI + j·ds.
	KMOVW 0(AX), K1
	KMOVW 2(AX), K2
	KMOVW 4(AX), K3
	KMOVW 6(AX), K4
	KMOVW 8(AX), K5
	KMOVW 10(AX), K6
	MOVQ SI, BX
	MOVQ R8, DI
	MOVQ n16+56(FP), CX
wino4_inm_group:
	VMOVUPS.Z (BX), K1, Z0
	VMOVUPS.Z (BX)(R9*1), K2, Z1
	VMOVUPS.Z (BX)(R9*2), K3, Z2
	VMOVUPS.Z (BX)(R11*1), K4, Z3
	VMOVUPS.Z (BX)(R9*4), K5, Z4
	VMOVUPS.Z (BX)(R12*1), K6, Z5
	WINO4_IN1
	VMOVUPS Z8, (DI)
	VMOVUPS Z9, (DI)(R10*1)
	VMOVUPS Z11, (DI)(R10*2)
	VMOVUPS Z13, (DI)(R13*1)
	VMOVUPS Z6, (DI)(R10*4)
	ADDQ R10, DI
	VMOVUPS Z14, (DI)(R10*4)
	SUBQ R10, DI
	ADDQ $64, BX
	ADDQ $64, DI
	DECQ CX
	JNZ  wino4_inm_group
	ADDQ DX, SI
	ADDQ R14, R8
	ADDQ $12, AX
	DECQ R15
	JNZ  wino4_inm_row
	// Stage 2: the columns of each group, in place (R14 = 6·ds, R15 = 18·ds bytes).
	MOVQ dst+40(FP), R8
	LEAQ (R14)(R14*2), R15
	MOVQ n16+56(FP), CX
wino4_inm_cols:
	MOVQ R8, DI
	WINO4_IN_COL
	WINO4_IN_COL
	WINO4_IN_COL
	WINO4_IN_COL
	WINO4_IN_COL
	WINO4_IN_COL
	ADDQ $64, R8
	DECQ CX
	JNZ  wino4_inm_cols
wino4_inm_done:
	VZEROUPPER
	RET

// The one-dimensional output transform y = Aᵀ·m (wino4Out1) of m0..m5 (registers or memory
// operands) into y0..y3, Z28 = 2, Z29 = 4, Z30 = 8, Z24..Z27 scratch. y1..y3 may be the
// registers of m1..m3, and y0 that of m0.
#define WINO4_OUT1(m0, m1, m2, m3, m4, m5, y0, y1, y2, y3) \
	VMOVUPS     m1, Z24 \
	VADDPS      m2, Z24, Z25 \ // a = m1 + m2
	VSUBPS      m2, Z24, Z24 \ // b = m1 − m2
	VMOVUPS     m3, Z26 \
	VADDPS      m4, Z26, Z27 \ // c = m3 + m4
	VSUBPS      m4, Z26, Z26 \ // d = m3 − m4
	VADDPS      m0, Z25, y0 \
	VADDPS      Z27, y0, y0 \  // y0 = (a + m0) + c
	VMOVAPS     Z24, y1 \
	VFMADD231PS Z26, Z28, y1 \ // y1 = b + 2·d
	VMOVAPS     Z25, y2 \
	VFMADD231PS Z27, Z29, y2 \ // y2 = a + 4·c
	VMOVAPS     Z24, y3 \
	VFMADD231PS Z26, Z30, y3 \
	VADDPS      m5, y3, y3     // y3 = (b + 8·d) + m5

// Column j of stage 1: m_i at BX + i·6·ss (R14 = 6·ss, R15 = 18·ss bytes), then BX advances to
// column j+1 (R10 = ss).
#define WINO4_OUT_COL(s0, s1, s2, s3) \
	LEAQ (BX)(R15*1), DX \
	WINO4_OUT1((BX), (BX)(R14*1), (BX)(R14*2), (DX), (BX)(R14*4), (DX)(R14*2), s0, s1, s2, s3) \
	ADDQ R10, BX

// Row r of stage 2: s_r0..s_r5 in registers, y_r stored at R8 + j·cs (R9 = cs, R11 = 3·cs bytes),
// then R8 advances by rs (AX).
#define WINO4_OUT_ROW(s0, s1, s2, s3, s4, s5) \
	WINO4_OUT1(s0, s1, s2, s3, s4, s5, s0, s1, s2, s3) \
	VMOVUPS s0, (R8) \
	VMOVUPS s1, (R8)(R9*1) \
	VMOVUPS s2, (R8)(R9*2) \
	VMOVUPS s3, (R8)(R11*1) \
	ADDQ AX, R8

// func wino4OutputAVX512(src *float32, ss int, dst *float32, rs, cs int, n16 int)
// For each of n16 groups of 16 channels: m[i][j] = src[(6i+j)·ss + c],
// dst[r·rs + s·cs + c] = (Aᵀ·m·A)[r][s] for r, s < 4; strides in elements. Stage 1 keeps the
// 4×6 values of Aᵀ·m in Z0..Z23 (s_rj in Z(6r+j)).
TEXT ·wino4OutputAVX512(SB), NOSPLIT, $0-48
	MOVQ src+0(FP), SI
	MOVQ ss+8(FP), R10
	SHLQ $2, R10
	LEAQ (R10)(R10*2), R14
	SHLQ $1, R14
	LEAQ (R14)(R14*2), R15
	MOVQ dst+16(FP), DI
	MOVQ rs+24(FP), AX
	SHLQ $2, AX
	MOVQ cs+32(FP), R9
	SHLQ $2, R9
	LEAQ (R9)(R9*2), R11
	MOVQ n16+40(FP), CX
	MOVL $0x40000000, BX
	VPBROADCASTD BX, Z28
	MOVL $0x40800000, BX
	VPBROADCASTD BX, Z29
	MOVL $0x41000000, BX
	VPBROADCASTD BX, Z30
	TESTQ CX, CX
	JZ   wino4_out_done
wino4_out_loop:
	MOVQ SI, BX
	WINO4_OUT_COL(Z0, Z6, Z12, Z18)
	WINO4_OUT_COL(Z1, Z7, Z13, Z19)
	WINO4_OUT_COL(Z2, Z8, Z14, Z20)
	WINO4_OUT_COL(Z3, Z9, Z15, Z21)
	WINO4_OUT_COL(Z4, Z10, Z16, Z22)
	WINO4_OUT_COL(Z5, Z11, Z17, Z23)
	MOVQ DI, R8
	WINO4_OUT_ROW(Z0, Z1, Z2, Z3, Z4, Z5)
	WINO4_OUT_ROW(Z6, Z7, Z8, Z9, Z10, Z11)
	WINO4_OUT_ROW(Z12, Z13, Z14, Z15, Z16, Z17)
	WINO4_OUT_ROW(Z18, Z19, Z20, Z21, Z22, Z23)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  wino4_out_loop
wino4_out_done:
	VZEROUPPER
	RET

// The one-dimensional integer filter transform h = H·x (wino4Filter1) of x0, x1, x2: h1..h4 into
// y1..y4 (h0 = x0, h5 = x2), with Z30 = 4, Z31 = 2 and Z28, Z29 scratch.
#define WINO4_H1(x0, x1, x2, y1, y2, y3, y4) \
	VADDPS       x2, x0, Z28 \
	VADDPS       x1, Z28, y1 \
	VSUBPS       x1, Z28, y2 \
	VMOVAPS      x0, Z29 \
	VFMADD231PS  x2, Z30, Z29 \
	VMOVAPS      Z29, y3 \
	VFMADD231PS  x1, Z31, y3 \
	VMOVAPS      Z29, y4 \
	VFNMADD231PS x1, Z31, y4

// Stores h·scale[ξ] at DX, then advances DX by us (R9 bytes) to ξ+1 (so = 4·ξ; Z26, Z27
// scratch).
#define WINO4_FSTORE(h, so) \
	VBROADCASTSS so(R8), Z27 \
	VMULPS       Z27, h, Z26 \
	VMOVUPS      Z26, (DX) \
	ADDQ         R9, DX

// func wino4FilterAVX512(gf, u, scale *float32, us, nc, rs int)
// For each of nc rows of 16 channel pairs: the filters gf[k·256 + lane] (k = 3·kh + kw) into
// u[ξ·us + lane] = (G·g·Gᵀ)[ξ/6][ξ%6] = scale[ξ]·(H·g·Hᵀ)[ξ/6][ξ%6]; rows 16 floats apart in gf
// and rs floats apart in u (R10 = rs bytes). H·g
// (columns first) is kept in Z0..Z17, (H·g)[i][l] in Z(3i+l).
TEXT ·wino4FilterAVX512(SB), NOSPLIT, $0-48
	MOVQ gf+0(FP), SI
	MOVQ u+8(FP), DI
	MOVQ scale+16(FP), R8
	MOVQ us+24(FP), R9
	SHLQ $2, R9
	MOVQ nc+32(FP), CX
	MOVQ rs+40(FP), R10
	SHLQ $2, R10
	MOVL $0x40800000, BX
	VPBROADCASTD BX, Z30
	MOVL $0x40000000, BX
	VPBROADCASTD BX, Z31
	TESTQ CX, CX
	JZ   wino4_filter_done
wino4_filter_loop:
	MOVQ DI, DX
	VMOVUPS 0(SI), Z0
	VMOVUPS 3072(SI), Z18
	VMOVUPS 6144(SI), Z15
	WINO4_H1(Z0, Z18, Z15, Z3, Z6, Z9, Z12)
	VMOVUPS 1024(SI), Z1
	VMOVUPS 4096(SI), Z18
	VMOVUPS 7168(SI), Z16
	WINO4_H1(Z1, Z18, Z16, Z4, Z7, Z10, Z13)
	VMOVUPS 2048(SI), Z2
	VMOVUPS 5120(SI), Z18
	VMOVUPS 8192(SI), Z17
	WINO4_H1(Z2, Z18, Z17, Z5, Z8, Z11, Z14)
	WINO4_H1(Z0, Z1, Z2, Z21, Z22, Z23, Z24)
	WINO4_FSTORE(Z0, 0)
	WINO4_FSTORE(Z21, 4)
	WINO4_FSTORE(Z22, 8)
	WINO4_FSTORE(Z23, 12)
	WINO4_FSTORE(Z24, 16)
	WINO4_FSTORE(Z2, 20)
	WINO4_H1(Z3, Z4, Z5, Z21, Z22, Z23, Z24)
	WINO4_FSTORE(Z3, 24)
	WINO4_FSTORE(Z21, 28)
	WINO4_FSTORE(Z22, 32)
	WINO4_FSTORE(Z23, 36)
	WINO4_FSTORE(Z24, 40)
	WINO4_FSTORE(Z5, 44)
	WINO4_H1(Z6, Z7, Z8, Z21, Z22, Z23, Z24)
	WINO4_FSTORE(Z6, 48)
	WINO4_FSTORE(Z21, 52)
	WINO4_FSTORE(Z22, 56)
	WINO4_FSTORE(Z23, 60)
	WINO4_FSTORE(Z24, 64)
	WINO4_FSTORE(Z8, 68)
	WINO4_H1(Z9, Z10, Z11, Z21, Z22, Z23, Z24)
	WINO4_FSTORE(Z9, 72)
	WINO4_FSTORE(Z21, 76)
	WINO4_FSTORE(Z22, 80)
	WINO4_FSTORE(Z23, 84)
	WINO4_FSTORE(Z24, 88)
	WINO4_FSTORE(Z11, 92)
	WINO4_H1(Z12, Z13, Z14, Z21, Z22, Z23, Z24)
	WINO4_FSTORE(Z12, 96)
	WINO4_FSTORE(Z21, 100)
	WINO4_FSTORE(Z22, 104)
	WINO4_FSTORE(Z23, 108)
	WINO4_FSTORE(Z24, 112)
	WINO4_FSTORE(Z14, 116)
	WINO4_H1(Z15, Z16, Z17, Z21, Z22, Z23, Z24)
	WINO4_FSTORE(Z15, 120)
	WINO4_FSTORE(Z21, 124)
	WINO4_FSTORE(Z22, 128)
	WINO4_FSTORE(Z23, 132)
	WINO4_FSTORE(Z24, 136)
	WINO4_FSTORE(Z17, 140)
	ADDQ $64, SI
	ADDQ R10, DI
	DECQ CX
	JNZ  wino4_filter_loop
wino4_filter_done:
	VZEROUPPER
	RET

// The one-dimensional gradient transform r = A·e (wino4Dy1) of e0..e3 (registers) without its
// copies r0 = e0 and r5 = e3: r1..r4 into the given registers, Z31 = 4, Z28 and Z29 scratch.
#define WINO4_DY1(e0, e1, e2, e3, r1, r2, r3, r4) \
	VADDPS      e2, e0, Z28 \  // p = e0 + e2
	VADDPS      e3, e1, Z29 \  // q = e1 + e3
	VADDPS      Z29, Z28, r1 \ // r1 = p + q
	VSUBPS      Z29, Z28, r2 \ // r2 = p − q
	VMOVAPS     e0, Z28 \
	VFMADD231PS e2, Z31, Z28 \ // u = e0 + 4·e2
	VMOVAPS     e1, Z29 \
	VFMADD231PS e3, Z31, Z29 \
	VADDPS      Z29, Z29, Z29 \ // v = 2·(e1 + 4·e3)
	VADDPS      Z29, Z28, r3 \ // r3 = u + v
	VSUBPS      Z29, Z28, r4   // r4 = u − v

// Row i of stage 1: e_i0..e_i3 at BX + j·cs (R9 = cs, R11 = 3·cs bytes) into t_i0..t_i5 in
// registers t0..t5 (t0 = e_i0 and t5 = e_i3 loaded in place), then BX advances one row (AX = rs).
#define WINO4_DY_ROW(t0, t1, t2, t3, t4, t5) \
	VMOVUPS (BX), t0 \
	VMOVUPS (BX)(R9*1), Z24 \
	VMOVUPS (BX)(R9*2), Z25 \
	VMOVUPS (BX)(R11*1), t5 \
	WINO4_DY1(t0, Z24, Z25, t5, t1, t2, t3, t4) \
	ADDQ AX, BX

// Column j of stage 2: t_0j..t_3j in registers, the six results stored at DX + r·6·ds
// (R14 = 6·ds, R15 = 18·ds, R12 = 30·ds bytes), then DX advances one column (R10 = ds).
#define WINO4_DY_COL(t0, t1, t2, t3) \
	WINO4_DY1(t0, t1, t2, t3, Z24, Z25, Z26, Z27) \
	VMOVUPS t0, (DX) \
	VMOVUPS Z24, (DX)(R14*1) \
	VMOVUPS Z25, (DX)(R14*2) \
	VMOVUPS Z26, (DX)(R15*1) \
	VMOVUPS Z27, (DX)(R14*4) \
	VMOVUPS t3, (DX)(R12*1) \
	ADDQ R10, DX

// func wino4DyPanelsAVX512(src *float32, rs, cs int, dst *float32, ds, ps int, n16 int)
// For each of n16 groups of 16 channels: e[i][j] = src[i·rs + j·cs + c] (4×4 tile),
// dst[g·ps + (6i+j)·ds + c%16] = (A·e·Aᵀ)[i][j] for group g = c/16 (strides in elements), rows
// (e·Aᵀ) first, as wino4DyGo: the 24 values of e·Aᵀ stay in Z0..Z23.
TEXT ·wino4DyPanelsAVX512(SB), NOSPLIT, $0-56
	MOVQ src+0(FP), SI
	MOVQ rs+8(FP), AX
	SHLQ $2, AX
	MOVQ cs+16(FP), R9
	SHLQ $2, R9
	LEAQ (R9)(R9*2), R11
	MOVQ dst+24(FP), DI
	MOVQ ds+32(FP), R10
	SHLQ $2, R10
	LEAQ (R10)(R10*2), R14
	ADDQ R14, R14
	LEAQ (R14)(R14*2), R15
	LEAQ (R14)(R14*4), R12
	MOVQ ps+40(FP), R13
	SHLQ $2, R13
	MOVQ n16+48(FP), CX
	MOVL $0x40800000, BX
	VPBROADCASTD BX, Z31
	TESTQ CX, CX
	JZ   wino4_dy_done
wino4_dy_loop:
	MOVQ SI, BX
	WINO4_DY_ROW(Z0, Z1, Z2, Z3, Z4, Z5)
	WINO4_DY_ROW(Z6, Z7, Z8, Z9, Z10, Z11)
	WINO4_DY_ROW(Z12, Z13, Z14, Z15, Z16, Z17)
	WINO4_DY_ROW(Z18, Z19, Z20, Z21, Z22, Z23)
	MOVQ DI, DX
	WINO4_DY_COL(Z0, Z6, Z12, Z18)
	WINO4_DY_COL(Z1, Z7, Z13, Z19)
	WINO4_DY_COL(Z2, Z8, Z14, Z20)
	WINO4_DY_COL(Z3, Z9, Z15, Z21)
	WINO4_DY_COL(Z4, Z10, Z16, Z22)
	WINO4_DY_COL(Z5, Z11, Z17, Z23)
	ADDQ $64, SI
	ADDQ R13, DI
	DECQ CX
	JNZ  wino4_dy_loop
wino4_dy_done:
	VZEROUPPER
	RET
