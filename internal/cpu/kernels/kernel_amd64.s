//go:build amd64 && !purego

#include "textflag.h"

// One k-step of the 6×16 float32 micro-kernel: B row in Y12/Y13, A column broadcast into Y14/Y15,
// accumulators Y0..Y11 (row r in Y(2r), Y(2r+1)). off is the byte offset of the step in the panels.
// One k-step of the 6×16 float32 micro-kernel: B row in Y12/Y13, A column broadcast into Y14/Y15,
// accumulators Y0..Y11 (row r in Y(2r), Y(2r+1)). A[r, p] is at SI + r·R9 (R10 = 3·R9,
// R11 = 5·R9); SI advances by R12 bytes per step; boff is the byte offset of the step in the B panel.
#define S6x16_STEP(boff) \
	VMOVUPS boff(DI), Y12 \
	VMOVUPS boff+32(DI), Y13 \
	VBROADCASTSS (SI), Y14 \
	VFMADD231PS Y12, Y14, Y0 \
	VFMADD231PS Y13, Y14, Y1 \
	VBROADCASTSS (SI)(R9*1), Y15 \
	VFMADD231PS Y12, Y15, Y2 \
	VFMADD231PS Y13, Y15, Y3 \
	VBROADCASTSS (SI)(R9*2), Y14 \
	VFMADD231PS Y12, Y14, Y4 \
	VFMADD231PS Y13, Y14, Y5 \
	VBROADCASTSS (SI)(R10*1), Y15 \
	VFMADD231PS Y12, Y15, Y6 \
	VFMADD231PS Y13, Y15, Y7 \
	VBROADCASTSS (SI)(R9*4), Y14 \
	VFMADD231PS Y12, Y14, Y8 \
	VFMADD231PS Y13, Y14, Y9 \
	VBROADCASTSS (SI)(R11*1), Y15 \
	VFMADD231PS Y12, Y15, Y10 \
	VFMADD231PS Y13, Y15, Y11 \
	ADDQ R12, SI

// Stores one row of C (two Y registers) with C = acc + beta·C; beta broadcast in Y12.
#define S6x16_ROW_BETA(r0, r1) \
	VFMADD231PS (DX), Y12, r0 \
	VFMADD231PS 32(DX), Y12, r1 \
	VMOVUPS r0, (DX) \
	VMOVUPS r1, 32(DX) \
	ADDQ R8, DX

#define S6x16_ROW(r0, r1) \
	VMOVUPS r0, (DX) \
	VMOVUPS r1, 32(DX) \
	ADDQ R8, DX

// func sgemmKernel6x16AVX2(k int, a *float32, rs, ps int, b, c *float32, ldc int, beta float32)
// C[0:6, 0:16] = Σ_p a[i·rs+p·ps]·b[p*16+j] + beta·C (C not read when beta == 0); strides in elements.
TEXT ·sgemmKernel6x16AVX2(SB), NOSPLIT, $0-60
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ rs+16(FP), R9
	SHLQ $2, R9
	LEAQ (R9)(R9*2), R10
	LEAQ (R9)(R9*4), R11
	MOVQ ps+24(FP), R12
	SHLQ $2, R12
	MOVQ b+32(FP), DI
	MOVQ c+40(FP), DX
	MOVQ ldc+48(FP), R8
	SHLQ $2, R8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	// Prefetch the C tile.
	MOVQ DX, AX
	PREFETCHT0 (AX)
	PREFETCHT0 60(AX)
	ADDQ R8, AX
	PREFETCHT0 (AX)
	PREFETCHT0 60(AX)
	ADDQ R8, AX
	PREFETCHT0 (AX)
	PREFETCHT0 60(AX)
	ADDQ R8, AX
	PREFETCHT0 (AX)
	PREFETCHT0 60(AX)
	ADDQ R8, AX
	PREFETCHT0 (AX)
	PREFETCHT0 60(AX)
	ADDQ R8, AX
	PREFETCHT0 (AX)
	PREFETCHT0 60(AX)
	MOVQ CX, BX
	SHRQ $2, BX
	JZ   s6x16_tail
s6x16_loop4:
	PREFETCHT0 (SI)(R12*8)
	S6x16_STEP(0)
	S6x16_STEP(64)
	PREFETCHT0 512(DI)
	S6x16_STEP(128)
	S6x16_STEP(192)
	ADDQ $256, DI
	DECQ BX
	JNZ  s6x16_loop4
s6x16_tail:
	ANDQ $3, CX
	JZ   s6x16_store
s6x16_loop1:
	S6x16_STEP(0)
	ADDQ $64, DI
	DECQ CX
	JNZ  s6x16_loop1
s6x16_store:
	MOVL beta+56(FP), AX
	TESTL $0x7fffffff, AX
	JZ   s6x16_nobeta
	VBROADCASTSS beta+56(FP), Y12
	S6x16_ROW_BETA(Y0, Y1)
	S6x16_ROW_BETA(Y2, Y3)
	S6x16_ROW_BETA(Y4, Y5)
	S6x16_ROW_BETA(Y6, Y7)
	S6x16_ROW_BETA(Y8, Y9)
	S6x16_ROW_BETA(Y10, Y11)
	VZEROUPPER
	RET
s6x16_nobeta:
	S6x16_ROW(Y0, Y1)
	S6x16_ROW(Y2, Y3)
	S6x16_ROW(Y4, Y5)
	S6x16_ROW(Y6, Y7)
	S6x16_ROW(Y8, Y9)
	S6x16_ROW(Y10, Y11)
	VZEROUPPER
	RET

// One k-step of the 6×8 float64 micro-kernel (row r in Y(2r), Y(2r+1), 4 doubles each).
#define D6x8_STEP \
	VMOVUPD (DI), Y12 \
	VMOVUPD 32(DI), Y13 \
	VBROADCASTSD (SI), Y14 \
	VFMADD231PD Y12, Y14, Y0 \
	VFMADD231PD Y13, Y14, Y1 \
	VBROADCASTSD (SI)(R9*1), Y15 \
	VFMADD231PD Y12, Y15, Y2 \
	VFMADD231PD Y13, Y15, Y3 \
	VBROADCASTSD (SI)(R9*2), Y14 \
	VFMADD231PD Y12, Y14, Y4 \
	VFMADD231PD Y13, Y14, Y5 \
	VBROADCASTSD (SI)(R10*1), Y15 \
	VFMADD231PD Y12, Y15, Y6 \
	VFMADD231PD Y13, Y15, Y7 \
	VBROADCASTSD (SI)(R9*4), Y14 \
	VFMADD231PD Y12, Y14, Y8 \
	VFMADD231PD Y13, Y14, Y9 \
	VBROADCASTSD (SI)(R11*1), Y15 \
	VFMADD231PD Y12, Y15, Y10 \
	VFMADD231PD Y13, Y15, Y11 \
	ADDQ R12, SI \
	ADDQ $64, DI

#define D6x8_ROW_BETA(r0, r1) \
	VFMADD231PD (DX), Y12, r0 \
	VFMADD231PD 32(DX), Y12, r1 \
	VMOVUPD r0, (DX) \
	VMOVUPD r1, 32(DX) \
	ADDQ R8, DX

#define D6x8_ROW(r0, r1) \
	VMOVUPD r0, (DX) \
	VMOVUPD r1, 32(DX) \
	ADDQ R8, DX

// func dgemmKernel6x8AVX2(k int, a *float64, rs, ps int, b, c *float64, ldc int, beta float64)
TEXT ·dgemmKernel6x8AVX2(SB), NOSPLIT, $0-64
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ rs+16(FP), R9
	SHLQ $3, R9
	LEAQ (R9)(R9*2), R10
	LEAQ (R9)(R9*4), R11
	MOVQ ps+24(FP), R12
	SHLQ $3, R12
	MOVQ b+32(FP), DI
	MOVQ c+40(FP), DX
	MOVQ ldc+48(FP), R8
	SHLQ $3, R8
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	VXORPD Y4, Y4, Y4
	VXORPD Y5, Y5, Y5
	VXORPD Y6, Y6, Y6
	VXORPD Y7, Y7, Y7
	VXORPD Y8, Y8, Y8
	VXORPD Y9, Y9, Y9
	VXORPD Y10, Y10, Y10
	VXORPD Y11, Y11, Y11
	TESTQ CX, CX
	JZ   d6x8_store
d6x8_loop1:
	D6x8_STEP
	DECQ CX
	JNZ  d6x8_loop1
d6x8_store:
	MOVQ beta+56(FP), AX
	SHLQ $1, AX
	JZ   d6x8_nobeta
	VBROADCASTSD beta+56(FP), Y12
	D6x8_ROW_BETA(Y0, Y1)
	D6x8_ROW_BETA(Y2, Y3)
	D6x8_ROW_BETA(Y4, Y5)
	D6x8_ROW_BETA(Y6, Y7)
	D6x8_ROW_BETA(Y8, Y9)
	D6x8_ROW_BETA(Y10, Y11)
	VZEROUPPER
	RET
d6x8_nobeta:
	D6x8_ROW(Y0, Y1)
	D6x8_ROW(Y2, Y3)
	D6x8_ROW(Y4, Y5)
	D6x8_ROW(Y6, Y7)
	D6x8_ROW(Y8, Y9)
	D6x8_ROW(Y10, Y11)
	VZEROUPPER
	RET
