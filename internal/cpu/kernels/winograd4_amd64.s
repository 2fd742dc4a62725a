//go:build amd64 && !purego

#include "textflag.h"

// The 8-lane (AVX2) forms of the Winograd F(4×4, 3×3) tile transforms of
// winograd4_avx512_amd64.s, on groups of 8 channels, with the operations of wino4InputGo and
// wino4OutputGo in the same order (every multiplication by a power of two, exact).

// The one-dimensional input transform r = Bᵀ·d (wino4In1) on Y0..Y5 = d0..d5 with Y14 = 4,
// Y15 = 2, each r_j stored to the memory operand a_j as soon as it is known (Y6..Y9 scratch).
#define WINO4_IN1_Y(a0, a1, a2, a3, a4, a5) \
	VSUBPS       Y2, Y4, Y6 \
	VSUBPS       Y1, Y3, Y7 \
	VSUBPS       Y2, Y0, Y8 \
	VFMADD213PS  Y6, Y14, Y8 \
	VMOVUPS      Y8, a0 \
	VADDPS       Y3, Y4, Y8 \
	VADDPS       Y2, Y1, Y9 \
	VFNMADD231PS Y9, Y14, Y8 \
	VMOVUPS      Y8, a1 \
	VSUBPS       Y3, Y4, Y8 \
	VSUBPS       Y2, Y1, Y9 \
	VFMADD231PS  Y9, Y14, Y8 \
	VMOVUPS      Y8, a2 \
	VMOVAPS      Y6, Y8 \
	VFMADD231PS  Y7, Y15, Y8 \
	VMOVUPS      Y8, a3 \
	VFNMADD231PS Y7, Y15, Y6 \
	VMOVUPS      Y6, a4 \
	VSUBPS       Y3, Y5, Y8 \
	VFNMADD231PS Y7, Y14, Y8 \
	VMOVUPS      Y8, a5

// Row i of stage 1: d_j at BX + j·cs (R9 = cs, R11 = 3·cs, R12 = 5·cs bytes), r_j stored at
// DI + j·ds (R10 = ds, R13 = 3·ds, DX = 5·ds bytes); DI then advances by 6·ds (R14).
#define WINO4_IN_ROW_Y \
	VMOVUPS (BX), Y0 \
	VMOVUPS (BX)(R9*1), Y1 \
	VMOVUPS (BX)(R9*2), Y2 \
	VMOVUPS (BX)(R11*1), Y3 \
	VMOVUPS (BX)(R9*4), Y4 \
	VMOVUPS (BX)(R12*1), Y5 \
	WINO4_IN1_Y((DI), (DI)(R10*1), (DI)(R10*2), (DI)(R13*1), (DI)(R10*4), (DI)(DX*1)) \
	ADDQ AX, BX \
	ADDQ R14, DI

// Column j of stage 2, in place: the values at DI + i·6·ds (R14 = 6·ds, R15 = 18·ds bytes).
#define WINO4_IN_COL_Y \
	LEAQ (DI)(R15*1), BX \
	VMOVUPS (DI), Y0 \
	VMOVUPS (DI)(R14*1), Y1 \
	VMOVUPS (DI)(R14*2), Y2 \
	VMOVUPS (BX), Y3 \
	VMOVUPS (DI)(R14*4), Y4 \
	VMOVUPS (BX)(R14*2), Y5 \
	WINO4_IN1_Y((DI), (DI)(R14*1), (DI)(R14*2), (BX), (DI)(R14*4), (BX)(R14*2)) \
	ADDQ R10, DI

// func wino4InputAVX(src *float32, rs, cs int, dst *float32, ds int, n8 int)
// For each of n8 groups of 8 channels: d[i][j] = src[i·rs + j·cs + c] (6×6 tile),
// dst[(6i+j)·ds + c] = (Bᵀ·d·B)[i][j]; strides in elements. Stage 1 writes d·B row by row into
// dst, stage 2 transforms dst's columns in place.
TEXT ·wino4InputAVX(SB), NOSPLIT, $0-48
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
	MOVQ n8+40(FP), CX
	MOVL $0x40800000, BX
	MOVQ BX, X14
	VBROADCASTSS X14, Y14
	MOVL $0x40000000, BX
	MOVQ BX, X15
	VBROADCASTSS X15, Y15
	TESTQ CX, CX
	JZ   wino4_in_done_y
wino4_in_loop_y:
	MOVQ SI, BX
	MOVQ R8, DI
	WINO4_IN_ROW_Y
	WINO4_IN_ROW_Y
	WINO4_IN_ROW_Y
	WINO4_IN_ROW_Y
	WINO4_IN_ROW_Y
	WINO4_IN_ROW_Y
	MOVQ R8, DI
	WINO4_IN_COL_Y
	WINO4_IN_COL_Y
	WINO4_IN_COL_Y
	WINO4_IN_COL_Y
	WINO4_IN_COL_Y
	WINO4_IN_COL_Y
	ADDQ $32, SI
	ADDQ $32, R8
	DECQ CX
	JNZ  wino4_in_loop_y
wino4_in_done_y:
	VZEROUPPER
	RET

// The one-dimensional output transform y = Aᵀ·m (wino4Out1) of m0..m5 (registers or memory
// operands) into the memory operands o0..o3, with Y12 = 2, Y13 = 4, Y14 = 8 and Y8..Y11, Y0..Y3
// scratch.
#define WINO4_OUT1_Y(m0, m1, m2, m3, m4, m5, o0, o1, o2, o3) \
	VMOVUPS     m1, Y8 \
	VADDPS      m2, Y8, Y9 \
	VSUBPS      m2, Y8, Y8 \
	VMOVUPS     m3, Y10 \
	VADDPS      m4, Y10, Y11 \
	VSUBPS      m4, Y10, Y10 \
	VADDPS      m0, Y9, Y0 \
	VADDPS      Y11, Y0, Y0 \
	VMOVUPS     Y0, o0 \
	VMOVAPS     Y8, Y1 \
	VFMADD231PS Y10, Y12, Y1 \
	VMOVUPS     Y1, o1 \
	VMOVAPS     Y9, Y2 \
	VFMADD231PS Y11, Y13, Y2 \
	VMOVUPS     Y2, o2 \
	VMOVAPS     Y8, Y3 \
	VFMADD231PS Y10, Y14, Y3 \
	VADDPS      m5, Y3, Y3 \
	VMOVUPS     Y3, o3

// Column j of stage 1: m_i at BX + i·6·ss (R14 = 6·ss, R15 = 18·ss bytes), (Aᵀ·m)[r][j] stored at
// the scratch R8 + (6r + j)·32 (o_r = (6r + j)·32), then BX advances to column j+1 (R10 = ss).
#define WINO4_OUT_COL_Y(o0, o1, o2, o3) \
	LEAQ (BX)(R15*1), DX \
	WINO4_OUT1_Y((BX), (BX)(R14*1), (BX)(R14*2), (DX), (BX)(R14*4), (DX)(R14*2), o0(R8), o1(R8), o2(R8), o3(R8)) \
	ADDQ R10, BX

// Row r of stage 2: (Aᵀ·m)[r][j] at R8 + o_j, y_r stored at DI + j·cs (R9 = cs, R11 = 3·cs
// bytes), then DI advances by rs (AX).
#define WINO4_OUT_ROW_Y(o0, o1, o2, o3, o4, o5) \
	WINO4_OUT1_Y(o0(R8), o1(R8), o2(R8), o3(R8), o4(R8), o5(R8), (DI), (DI)(R9*1), (DI)(R9*2), (DI)(R11*1)) \
	ADDQ AX, DI

// func wino4OutputAVX(src *float32, ss int, dst *float32, rs, cs int, n8 int, scratch *float32)
// For each of n8 groups of 8 channels: m[i][j] = src[(6i+j)·ss + c],
// dst[r·rs + s·cs + c] = (Aᵀ·m·A)[r][s] for r, s < 4; strides in elements. Stage 1 keeps the
// 4×6 values of Aᵀ·m in scratch (192 floats).
TEXT ·wino4OutputAVX(SB), NOSPLIT, $0-56
	MOVQ src+0(FP), SI
	MOVQ ss+8(FP), R10
	SHLQ $2, R10
	LEAQ (R10)(R10*2), R14
	SHLQ $1, R14
	LEAQ (R14)(R14*2), R15
	MOVQ dst+16(FP), R13
	MOVQ rs+24(FP), AX
	SHLQ $2, AX
	MOVQ cs+32(FP), R9
	SHLQ $2, R9
	LEAQ (R9)(R9*2), R11
	MOVQ n8+40(FP), CX
	MOVQ scratch+48(FP), R8
	MOVL $0x40000000, BX
	MOVQ BX, X12
	VBROADCASTSS X12, Y12
	MOVL $0x40800000, BX
	MOVQ BX, X13
	VBROADCASTSS X13, Y13
	MOVL $0x41000000, BX
	MOVQ BX, X14
	VBROADCASTSS X14, Y14
	TESTQ CX, CX
	JZ   wino4_out_done_y
wino4_out_loop_y:
	MOVQ SI, BX
	WINO4_OUT_COL_Y(0, 192, 384, 576)
	WINO4_OUT_COL_Y(32, 224, 416, 608)
	WINO4_OUT_COL_Y(64, 256, 448, 640)
	WINO4_OUT_COL_Y(96, 288, 480, 672)
	WINO4_OUT_COL_Y(128, 320, 512, 704)
	WINO4_OUT_COL_Y(160, 352, 544, 736)
	MOVQ R13, DI
	WINO4_OUT_ROW_Y(0, 32, 64, 96, 128, 160)
	WINO4_OUT_ROW_Y(192, 224, 256, 288, 320, 352)
	WINO4_OUT_ROW_Y(384, 416, 448, 480, 512, 544)
	WINO4_OUT_ROW_Y(576, 608, 640, 672, 704, 736)
	ADDQ $32, SI
	ADDQ $32, R13
	DECQ CX
	JNZ  wino4_out_loop_y
wino4_out_done_y:
	VZEROUPPER
	RET

// The one-dimensional integer filter transform h = H·x (wino4Filter1) of Y0, Y1, Y2: h1..h4 into
// Y3, Y4, Y5, Y8 (h0 = Y0, h5 = Y2), with Y14 = 4, Y15 = 2 and Y6, Y7 scratch.
#define WINO4_H1_Y \
	VADDPS       Y2, Y0, Y6 \
	VADDPS       Y1, Y6, Y3 \
	VSUBPS       Y1, Y6, Y4 \
	VMOVAPS      Y0, Y7 \
	VFMADD231PS  Y2, Y14, Y7 \
	VMOVAPS      Y7, Y5 \
	VFMADD231PS  Y1, Y15, Y5 \
	VMOVAPS      Y7, Y8 \
	VFNMADD231PS Y1, Y15, Y8

// Stores h·scale[ξ] at DX, then advances DX by us (R9 bytes) to ξ+1 (so = 4·ξ; Y9, Y10 scratch).
#define WINO4_FSTORE_Y(h, so) \
	VBROADCASTSS so(R8), Y9 \
	VMULPS       Y9, h, Y10 \
	VMOVUPS      Y10, (DX) \
	ADDQ         R9, DX

// func wino4FilterAVX(gf, u, scale *float32, us, nc int, scratch *float32)
// wino4FilterAVX512 on 8-lane halves of the rows (2·nc half rows, 32 bytes apart): for each row of
// 16 channel pairs, the filters gf[k·256 + lane] into u[ξ·us + lane] =
// scale[ξ]·(H·g·Hᵀ)[ξ/6][ξ%6]; H·g (columns first) goes through scratch (18·8 floats, (H·g)[i][l]
// at 32·(3i + l) bytes).
TEXT ·wino4FilterAVX(SB), NOSPLIT, $0-48
	MOVQ gf+0(FP), SI
	MOVQ u+8(FP), DI
	MOVQ scale+16(FP), R8
	MOVQ us+24(FP), R9
	SHLQ $2, R9
	MOVQ nc+32(FP), CX
	SHLQ $1, CX
	MOVQ scratch+40(FP), R11
	MOVL $0x40800000, BX
	MOVQ BX, X14
	VBROADCASTSS X14, Y14
	MOVL $0x40000000, BX
	MOVQ BX, X15
	VBROADCASTSS X15, Y15
	TESTQ CX, CX
	JZ   wino4_filter_done_y
wino4_filter_loop_y:
	MOVQ DI, DX
	VMOVUPS 0(SI), Y0
	VMOVUPS 3072(SI), Y1
	VMOVUPS 6144(SI), Y2
	WINO4_H1_Y
	VMOVUPS Y0, 0(R11)
	VMOVUPS Y3, 96(R11)
	VMOVUPS Y4, 192(R11)
	VMOVUPS Y5, 288(R11)
	VMOVUPS Y8, 384(R11)
	VMOVUPS Y2, 480(R11)
	VMOVUPS 1024(SI), Y0
	VMOVUPS 4096(SI), Y1
	VMOVUPS 7168(SI), Y2
	WINO4_H1_Y
	VMOVUPS Y0, 32(R11)
	VMOVUPS Y3, 128(R11)
	VMOVUPS Y4, 224(R11)
	VMOVUPS Y5, 320(R11)
	VMOVUPS Y8, 416(R11)
	VMOVUPS Y2, 512(R11)
	VMOVUPS 2048(SI), Y0
	VMOVUPS 5120(SI), Y1
	VMOVUPS 8192(SI), Y2
	WINO4_H1_Y
	VMOVUPS Y0, 64(R11)
	VMOVUPS Y3, 160(R11)
	VMOVUPS Y4, 256(R11)
	VMOVUPS Y5, 352(R11)
	VMOVUPS Y8, 448(R11)
	VMOVUPS Y2, 544(R11)
	VMOVUPS 0(R11), Y0
	VMOVUPS 32(R11), Y1
	VMOVUPS 64(R11), Y2
	WINO4_H1_Y
	WINO4_FSTORE_Y(Y0, 0)
	WINO4_FSTORE_Y(Y3, 4)
	WINO4_FSTORE_Y(Y4, 8)
	WINO4_FSTORE_Y(Y5, 12)
	WINO4_FSTORE_Y(Y8, 16)
	WINO4_FSTORE_Y(Y2, 20)
	VMOVUPS 96(R11), Y0
	VMOVUPS 128(R11), Y1
	VMOVUPS 160(R11), Y2
	WINO4_H1_Y
	WINO4_FSTORE_Y(Y0, 24)
	WINO4_FSTORE_Y(Y3, 28)
	WINO4_FSTORE_Y(Y4, 32)
	WINO4_FSTORE_Y(Y5, 36)
	WINO4_FSTORE_Y(Y8, 40)
	WINO4_FSTORE_Y(Y2, 44)
	VMOVUPS 192(R11), Y0
	VMOVUPS 224(R11), Y1
	VMOVUPS 256(R11), Y2
	WINO4_H1_Y
	WINO4_FSTORE_Y(Y0, 48)
	WINO4_FSTORE_Y(Y3, 52)
	WINO4_FSTORE_Y(Y4, 56)
	WINO4_FSTORE_Y(Y5, 60)
	WINO4_FSTORE_Y(Y8, 64)
	WINO4_FSTORE_Y(Y2, 68)
	VMOVUPS 288(R11), Y0
	VMOVUPS 320(R11), Y1
	VMOVUPS 352(R11), Y2
	WINO4_H1_Y
	WINO4_FSTORE_Y(Y0, 72)
	WINO4_FSTORE_Y(Y3, 76)
	WINO4_FSTORE_Y(Y4, 80)
	WINO4_FSTORE_Y(Y5, 84)
	WINO4_FSTORE_Y(Y8, 88)
	WINO4_FSTORE_Y(Y2, 92)
	VMOVUPS 384(R11), Y0
	VMOVUPS 416(R11), Y1
	VMOVUPS 448(R11), Y2
	WINO4_H1_Y
	WINO4_FSTORE_Y(Y0, 96)
	WINO4_FSTORE_Y(Y3, 100)
	WINO4_FSTORE_Y(Y4, 104)
	WINO4_FSTORE_Y(Y5, 108)
	WINO4_FSTORE_Y(Y8, 112)
	WINO4_FSTORE_Y(Y2, 116)
	VMOVUPS 480(R11), Y0
	VMOVUPS 512(R11), Y1
	VMOVUPS 544(R11), Y2
	WINO4_H1_Y
	WINO4_FSTORE_Y(Y0, 120)
	WINO4_FSTORE_Y(Y3, 124)
	WINO4_FSTORE_Y(Y4, 128)
	WINO4_FSTORE_Y(Y5, 132)
	WINO4_FSTORE_Y(Y8, 136)
	WINO4_FSTORE_Y(Y2, 140)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  wino4_filter_loop_y
wino4_filter_done_y:
	VZEROUPPER
	RET
