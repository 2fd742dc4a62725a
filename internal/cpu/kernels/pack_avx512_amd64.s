//go:build amd64 && !purego

#include "textflag.h"

// Packing loops of the AVX-512 GEMM path (see pack_amd64.go).

// func packCopy32AVX512(dst, src *float32, lds, rows int)
// Copies rows rows of 32 floats from src (row stride lds elements) to dst (row stride 32).
TEXT ·packCopy32AVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ lds+16(FP), R8
	SHLQ $2, R8
	MOVQ rows+24(FP), CX
	TESTQ CX, CX
	JZ   copy32_done
copy32_loop:
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ R8, SI
	ADDQ $128, DI
	DECQ CX
	JNZ  copy32_loop
copy32_done:
	VZEROUPPER
	RET

// func packCopy16AVX512(dst *float32, ldd int, src *float32, lds, rows int, mask uint16)
// Copies the lanes in mask of rows rows of 16 floats from src (row stride lds elements) to dst
// (row stride ldd); other lanes of dst are left untouched and other lanes of src not read.
TEXT ·packCopy16AVX512(SB), NOSPLIT, $0-42
	MOVQ dst+0(FP), DI
	MOVQ ldd+8(FP), R9
	SHLQ $2, R9
	MOVQ src+16(FP), SI
	MOVQ lds+24(FP), R8
	SHLQ $2, R8
	MOVQ rows+32(FP), CX
	MOVWLZX mask+40(FP), AX
	KMOVW AX, K1
	TESTQ CX, CX
	JZ   copy16_done
copy16_loop:
	VMOVUPS (SI), K1, Z0
	VMOVUPS Z0, K1, (DI)
	ADDQ R8, SI
	ADDQ R9, DI
	DECQ CX
	JNZ  copy16_loop
copy16_done:
	VZEROUPPER
	RET

// TRANSPOSE16_STORE transposes the 16×16 block in Z0…Z15 (row r in Zr) through Z16…Z31 and
// writes its column p to DI + p·R12 bytes (lanes in K1 only), leaving DI past the last column.
#define TRANSPOSE16_STORE \
	VUNPCKLPS Z1, Z0, Z16; \
	VUNPCKHPS Z1, Z0, Z17; \
	VUNPCKLPS Z3, Z2, Z18; \
	VUNPCKHPS Z3, Z2, Z19; \
	VUNPCKLPS Z5, Z4, Z20; \
	VUNPCKHPS Z5, Z4, Z21; \
	VUNPCKLPS Z7, Z6, Z22; \
	VUNPCKHPS Z7, Z6, Z23; \
	VUNPCKLPS Z9, Z8, Z24; \
	VUNPCKHPS Z9, Z8, Z25; \
	VUNPCKLPS Z11, Z10, Z26; \
	VUNPCKHPS Z11, Z10, Z27; \
	VUNPCKLPS Z13, Z12, Z28; \
	VUNPCKHPS Z13, Z12, Z29; \
	VUNPCKLPS Z15, Z14, Z30; \
	VUNPCKHPS Z15, Z14, Z31; \
	VUNPCKLPD Z18, Z16, Z0; \
	VUNPCKHPD Z18, Z16, Z1; \
	VUNPCKLPD Z19, Z17, Z2; \
	VUNPCKHPD Z19, Z17, Z3; \
	VUNPCKLPD Z22, Z20, Z4; \
	VUNPCKHPD Z22, Z20, Z5; \
	VUNPCKLPD Z23, Z21, Z6; \
	VUNPCKHPD Z23, Z21, Z7; \
	VUNPCKLPD Z26, Z24, Z8; \
	VUNPCKHPD Z26, Z24, Z9; \
	VUNPCKLPD Z27, Z25, Z10; \
	VUNPCKHPD Z27, Z25, Z11; \
	VUNPCKLPD Z30, Z28, Z12; \
	VUNPCKHPD Z30, Z28, Z13; \
	VUNPCKLPD Z31, Z29, Z14; \
	VUNPCKHPD Z31, Z29, Z15; \
	VSHUFF32X4 $0x88, Z4, Z0, Z16; \
	VSHUFF32X4 $0xDD, Z4, Z0, Z20; \
	VSHUFF32X4 $0x88, Z5, Z1, Z17; \
	VSHUFF32X4 $0xDD, Z5, Z1, Z21; \
	VSHUFF32X4 $0x88, Z6, Z2, Z18; \
	VSHUFF32X4 $0xDD, Z6, Z2, Z22; \
	VSHUFF32X4 $0x88, Z7, Z3, Z19; \
	VSHUFF32X4 $0xDD, Z7, Z3, Z23; \
	VSHUFF32X4 $0x88, Z12, Z8, Z24; \
	VSHUFF32X4 $0xDD, Z12, Z8, Z28; \
	VSHUFF32X4 $0x88, Z13, Z9, Z25; \
	VSHUFF32X4 $0xDD, Z13, Z9, Z29; \
	VSHUFF32X4 $0x88, Z14, Z10, Z26; \
	VSHUFF32X4 $0xDD, Z14, Z10, Z30; \
	VSHUFF32X4 $0x88, Z15, Z11, Z27; \
	VSHUFF32X4 $0xDD, Z15, Z11, Z31; \
	VSHUFF32X4 $0x88, Z24, Z16, Z0; \
	VSHUFF32X4 $0xDD, Z24, Z16, Z8; \
	VSHUFF32X4 $0x88, Z25, Z17, Z1; \
	VSHUFF32X4 $0xDD, Z25, Z17, Z9; \
	VSHUFF32X4 $0x88, Z26, Z18, Z2; \
	VSHUFF32X4 $0xDD, Z26, Z18, Z10; \
	VSHUFF32X4 $0x88, Z27, Z19, Z3; \
	VSHUFF32X4 $0xDD, Z27, Z19, Z11; \
	VSHUFF32X4 $0x88, Z28, Z20, Z4; \
	VSHUFF32X4 $0xDD, Z28, Z20, Z12; \
	VSHUFF32X4 $0x88, Z29, Z21, Z5; \
	VSHUFF32X4 $0xDD, Z29, Z21, Z13; \
	VSHUFF32X4 $0x88, Z30, Z22, Z6; \
	VSHUFF32X4 $0xDD, Z30, Z22, Z14; \
	VSHUFF32X4 $0x88, Z31, Z23, Z7; \
	VSHUFF32X4 $0xDD, Z31, Z23, Z15; \
	VMOVUPS Z0, K1, (DI); \
	ADDQ R12, DI; \
	VMOVUPS Z1, K1, (DI); \
	ADDQ R12, DI; \
	VMOVUPS Z2, K1, (DI); \
	ADDQ R12, DI; \
	VMOVUPS Z3, K1, (DI); \
	ADDQ R12, DI; \
	VMOVUPS Z4, K1, (DI); \
	ADDQ R12, DI; \
	VMOVUPS Z5, K1, (DI); \
	ADDQ R12, DI; \
	VMOVUPS Z6, K1, (DI); \
	ADDQ R12, DI; \
	VMOVUPS Z7, K1, (DI); \
	ADDQ R12, DI; \
	VMOVUPS Z8, K1, (DI); \
	ADDQ R12, DI; \
	VMOVUPS Z9, K1, (DI); \
	ADDQ R12, DI; \
	VMOVUPS Z10, K1, (DI); \
	ADDQ R12, DI; \
	VMOVUPS Z11, K1, (DI); \
	ADDQ R12, DI; \
	VMOVUPS Z12, K1, (DI); \
	ADDQ R12, DI; \
	VMOVUPS Z13, K1, (DI); \
	ADDQ R12, DI; \
	VMOVUPS Z14, K1, (DI); \
	ADDQ R12, DI; \
	VMOVUPS Z15, K1, (DI); \
	ADDQ R12, DI

// func transpose16AVX512(dst *float32, lds int, src *float32, lss int, rows, blocks int, mask uint16)
// For each of blocks consecutive 16×16 blocks b: reads rows 0…rows-1 (rows ≤ 16; rows beyond
// repeat row rows-1) of 16 floats at src + r·lss + 16·b and writes column p of the block to
// dst + (16·b + p)·lds, the lanes in mask only (strides in elements).
TEXT ·transpose16AVX512(SB), NOSPLIT, $0-50
	MOVQ dst+0(FP), DI
	MOVQ lds+8(FP), R12
	SHLQ $2, R12
	MOVQ src+16(FP), SI
	MOVQ lss+24(FP), R8
	SHLQ $2, R8
	MOVQ rows+32(FP), R9
	MOVQ blocks+40(FP), CX
	MOVWLZX mask+48(FP), AX
	KMOVW AX, K1
	TESTQ CX, CX
	JZ   tr16_done
tr16_block:
	MOVQ SI, AX
	VMOVUPS (AX), Z0
	CMPQ R9, $1
	JLE  tr16_fill1
	ADDQ R8, AX
	VMOVUPS (AX), Z1
	CMPQ R9, $2
	JLE  tr16_fill2
	ADDQ R8, AX
	VMOVUPS (AX), Z2
	CMPQ R9, $3
	JLE  tr16_fill3
	ADDQ R8, AX
	VMOVUPS (AX), Z3
	CMPQ R9, $4
	JLE  tr16_fill4
	ADDQ R8, AX
	VMOVUPS (AX), Z4
	CMPQ R9, $5
	JLE  tr16_fill5
	ADDQ R8, AX
	VMOVUPS (AX), Z5
	CMPQ R9, $6
	JLE  tr16_fill6
	ADDQ R8, AX
	VMOVUPS (AX), Z6
	CMPQ R9, $7
	JLE  tr16_fill7
	ADDQ R8, AX
	VMOVUPS (AX), Z7
	CMPQ R9, $8
	JLE  tr16_fill8
	ADDQ R8, AX
	VMOVUPS (AX), Z8
	CMPQ R9, $9
	JLE  tr16_fill9
	ADDQ R8, AX
	VMOVUPS (AX), Z9
	CMPQ R9, $10
	JLE  tr16_fill10
	ADDQ R8, AX
	VMOVUPS (AX), Z10
	CMPQ R9, $11
	JLE  tr16_fill11
	ADDQ R8, AX
	VMOVUPS (AX), Z11
	CMPQ R9, $12
	JLE  tr16_fill12
	ADDQ R8, AX
	VMOVUPS (AX), Z12
	CMPQ R9, $13
	JLE  tr16_fill13
	ADDQ R8, AX
	VMOVUPS (AX), Z13
	CMPQ R9, $14
	JLE  tr16_fill14
	ADDQ R8, AX
	VMOVUPS (AX), Z14
	CMPQ R9, $15
	JLE  tr16_fill15
	ADDQ R8, AX
	VMOVUPS (AX), Z15
	JMP  tr16_loaded
tr16_fill1:
	VMOVAPS Z0, Z1
	VMOVAPS Z0, Z2
	VMOVAPS Z0, Z3
	VMOVAPS Z0, Z4
	VMOVAPS Z0, Z5
	VMOVAPS Z0, Z6
	VMOVAPS Z0, Z7
	VMOVAPS Z0, Z8
	VMOVAPS Z0, Z9
	VMOVAPS Z0, Z10
	VMOVAPS Z0, Z11
	VMOVAPS Z0, Z12
	VMOVAPS Z0, Z13
	VMOVAPS Z0, Z14
	VMOVAPS Z0, Z15
	JMP  tr16_loaded
tr16_fill2:
	VMOVAPS Z1, Z2
	VMOVAPS Z1, Z3
	VMOVAPS Z1, Z4
	VMOVAPS Z1, Z5
	VMOVAPS Z1, Z6
	VMOVAPS Z1, Z7
	VMOVAPS Z1, Z8
	VMOVAPS Z1, Z9
	VMOVAPS Z1, Z10
	VMOVAPS Z1, Z11
	VMOVAPS Z1, Z12
	VMOVAPS Z1, Z13
	VMOVAPS Z1, Z14
	VMOVAPS Z1, Z15
	JMP  tr16_loaded
tr16_fill3:
	VMOVAPS Z2, Z3
	VMOVAPS Z2, Z4
	VMOVAPS Z2, Z5
	VMOVAPS Z2, Z6
	VMOVAPS Z2, Z7
	VMOVAPS Z2, Z8
	VMOVAPS Z2, Z9
	VMOVAPS Z2, Z10
	VMOVAPS Z2, Z11
	VMOVAPS Z2, Z12
	VMOVAPS Z2, Z13
	VMOVAPS Z2, Z14
	VMOVAPS Z2, Z15
	JMP  tr16_loaded
tr16_fill4:
	VMOVAPS Z3, Z4
	VMOVAPS Z3, Z5
	VMOVAPS Z3, Z6
	VMOVAPS Z3, Z7
	VMOVAPS Z3, Z8
	VMOVAPS Z3, Z9
	VMOVAPS Z3, Z10
	VMOVAPS Z3, Z11
	VMOVAPS Z3, Z12
	VMOVAPS Z3, Z13
	VMOVAPS Z3, Z14
	VMOVAPS Z3, Z15
	JMP  tr16_loaded
tr16_fill5:
	VMOVAPS Z4, Z5
	VMOVAPS Z4, Z6
	VMOVAPS Z4, Z7
	VMOVAPS Z4, Z8
	VMOVAPS Z4, Z9
	VMOVAPS Z4, Z10
	VMOVAPS Z4, Z11
	VMOVAPS Z4, Z12
	VMOVAPS Z4, Z13
	VMOVAPS Z4, Z14
	VMOVAPS Z4, Z15
	JMP  tr16_loaded
tr16_fill6:
	VMOVAPS Z5, Z6
	VMOVAPS Z5, Z7
	VMOVAPS Z5, Z8
	VMOVAPS Z5, Z9
	VMOVAPS Z5, Z10
	VMOVAPS Z5, Z11
	VMOVAPS Z5, Z12
	VMOVAPS Z5, Z13
	VMOVAPS Z5, Z14
	VMOVAPS Z5, Z15
	JMP  tr16_loaded
tr16_fill7:
	VMOVAPS Z6, Z7
	VMOVAPS Z6, Z8
	VMOVAPS Z6, Z9
	VMOVAPS Z6, Z10
	VMOVAPS Z6, Z11
	VMOVAPS Z6, Z12
	VMOVAPS Z6, Z13
	VMOVAPS Z6, Z14
	VMOVAPS Z6, Z15
	JMP  tr16_loaded
tr16_fill8:
	VMOVAPS Z7, Z8
	VMOVAPS Z7, Z9
	VMOVAPS Z7, Z10
	VMOVAPS Z7, Z11
	VMOVAPS Z7, Z12
	VMOVAPS Z7, Z13
	VMOVAPS Z7, Z14
	VMOVAPS Z7, Z15
	JMP  tr16_loaded
tr16_fill9:
	VMOVAPS Z8, Z9
	VMOVAPS Z8, Z10
	VMOVAPS Z8, Z11
	VMOVAPS Z8, Z12
	VMOVAPS Z8, Z13
	VMOVAPS Z8, Z14
	VMOVAPS Z8, Z15
	JMP  tr16_loaded
tr16_fill10:
	VMOVAPS Z9, Z10
	VMOVAPS Z9, Z11
	VMOVAPS Z9, Z12
	VMOVAPS Z9, Z13
	VMOVAPS Z9, Z14
	VMOVAPS Z9, Z15
	JMP  tr16_loaded
tr16_fill11:
	VMOVAPS Z10, Z11
	VMOVAPS Z10, Z12
	VMOVAPS Z10, Z13
	VMOVAPS Z10, Z14
	VMOVAPS Z10, Z15
	JMP  tr16_loaded
tr16_fill12:
	VMOVAPS Z11, Z12
	VMOVAPS Z11, Z13
	VMOVAPS Z11, Z14
	VMOVAPS Z11, Z15
	JMP  tr16_loaded
tr16_fill13:
	VMOVAPS Z12, Z13
	VMOVAPS Z12, Z14
	VMOVAPS Z12, Z15
	JMP  tr16_loaded
tr16_fill14:
	VMOVAPS Z13, Z14
	VMOVAPS Z13, Z15
	JMP  tr16_loaded
tr16_fill15:
	VMOVAPS Z14, Z15
	JMP  tr16_loaded
tr16_loaded:
	TRANSPOSE16_STORE
	ADDQ $64, SI
	DECQ CX
	JNZ  tr16_block
tr16_done:
	VZEROUPPER
	RET

// func transposePtrs16AVX512(dst *float32, lds int, rows *[16]*float32, blocks int, mask uint16)
// For each of blocks consecutive 16×16 blocks b: reads the 16 floats at rows[r] + 16·b for each
// r < 16 and writes column p of the block to dst + (16·b + p)·lds, the lanes in mask only
// (strides in elements).
TEXT ·transposePtrs16AVX512(SB), NOSPLIT, $0-34
	MOVQ dst+0(FP), DI
	MOVQ lds+8(FP), R12
	SHLQ $2, R12
	MOVQ rows+16(FP), BX
	MOVQ blocks+24(FP), CX
	MOVWLZX mask+32(FP), AX
	KMOVW AX, K1
	XORQ DX, DX
	TESTQ CX, CX
	JZ   trp_done
trp_block:
	MOVQ 0(BX), AX
	VMOVUPS (AX)(DX*1), Z0
	MOVQ 8(BX), AX
	VMOVUPS (AX)(DX*1), Z1
	MOVQ 16(BX), AX
	VMOVUPS (AX)(DX*1), Z2
	MOVQ 24(BX), AX
	VMOVUPS (AX)(DX*1), Z3
	MOVQ 32(BX), AX
	VMOVUPS (AX)(DX*1), Z4
	MOVQ 40(BX), AX
	VMOVUPS (AX)(DX*1), Z5
	MOVQ 48(BX), AX
	VMOVUPS (AX)(DX*1), Z6
	MOVQ 56(BX), AX
	VMOVUPS (AX)(DX*1), Z7
	MOVQ 64(BX), AX
	VMOVUPS (AX)(DX*1), Z8
	MOVQ 72(BX), AX
	VMOVUPS (AX)(DX*1), Z9
	MOVQ 80(BX), AX
	VMOVUPS (AX)(DX*1), Z10
	MOVQ 88(BX), AX
	VMOVUPS (AX)(DX*1), Z11
	MOVQ 96(BX), AX
	VMOVUPS (AX)(DX*1), Z12
	MOVQ 104(BX), AX
	VMOVUPS (AX)(DX*1), Z13
	MOVQ 112(BX), AX
	VMOVUPS (AX)(DX*1), Z14
	MOVQ 120(BX), AX
	VMOVUPS (AX)(DX*1), Z15
	TRANSPOSE16_STORE
	ADDQ $64, DX
	DECQ CX
	JNZ  trp_block
trp_done:
	VZEROUPPER
	RET

// func packRuns14AVX512(dst, src1, src2 *float32, lds, rows, n1 int, mask1, mask2 uint16)
// Writes rows rows of 14 floats to dst (row stride 14): row r is the n1 floats at src1 + r·lds
// followed by the 14 − n1 floats at src2 + r·lds (strides in elements, 1 ≤ n1 ≤ 14; src2 is not
// read when n1 = 14); mask1 = 2^n1 − 1 and mask2 = 2^(14−n1) − 1. Each run is stored as a whole vector whose surplus lanes fall on the next
// run or row, written after it; the last row is stored through masks, so nothing past
// dst + 14·rows is written and nothing past the runs is read.
TEXT ·packRuns14AVX512(SB), NOSPLIT, $0-52
	MOVQ dst+0(FP), DI
	MOVQ src1+8(FP), SI
	MOVQ src2+16(FP), R10
	MOVQ lds+24(FP), R8
	SHLQ $2, R8
	MOVQ rows+32(FP), CX
	MOVQ n1+40(FP), R11
	TESTQ CX, CX
	JZ   runs14_done
	MOVWLZX mask1+48(FP), AX
	KMOVW AX, K1             // lanes of run 1
	MOVWLZX mask2+50(FP), AX
	KMOVW AX, K2             // lanes of run 2 (counted from its start)
	SHLQ $2, R11             // byte offset of run 2
	DECQ CX                  // rows before the last
	CMPQ R11, $56
	JEQ  runs14_one
	TESTQ CX, CX
	JZ   runs14_two_last
runs14_two:
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (R10), K2, Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, (DI)(R11*1)
	ADDQ R8, SI
	ADDQ R8, R10
	ADDQ $56, DI
	DECQ CX
	JNZ  runs14_two
runs14_two_last:
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (R10), K2, Z1
	VMOVUPS Z0, K1, (DI)
	VMOVUPS Z1, K2, (DI)(R11*1)
	JMP  runs14_done
runs14_one:
	TESTQ CX, CX
	JZ   runs14_one_last
runs14_one_loop:
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS Z0, (DI)
	ADDQ R8, SI
	ADDQ $56, DI
	DECQ CX
	JNZ  runs14_one_loop
runs14_one_last:
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS Z0, K1, (DI)
runs14_done:
	VZEROUPPER
	RET

// func packPixelsAVX512(dst *float32, runs *pixelRun, nRuns, pixels, lds int)
// For each pixel j < pixels and each of the nRuns runs d (32-byte records {src, stepMask, dstOff,
// mask}): loads the lanes in mask (zeroing the others) at src + (j·lds·4 AND stepMask) bytes and
// stores the whole vector at dst + dstOff + 56·j bytes, except for the last two pixels, whose
// stores are masked. The runs of one pixel must be in increasing dstOff order within each 14-float
// step and cover it, so that the surplus lanes of a store fall on a run or a pixel written after
// it.
TEXT ·packPixelsAVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ runs+8(FP), R9
	MOVQ nRuns+16(FP), R10
	MOVQ pixels+24(FP), CX
	MOVQ lds+32(FP), R11
	SHLQ $2, R11
	XORQ R12, R12            // j·lds·4
	TESTQ R10, R10
	JZ   pix_done
	MOVQ CX, R13
	SUBQ $2, CX              // pixels stored whole
	JLE  pix_tail
	SUBQ CX, R13             // pixels stored through masks (2)
pix_loop:
	MOVQ R9, SI
	MOVQ R10, DX
pix_run:
	MOVQ 0(SI), AX
	MOVQ 8(SI), BX
	ANDQ R12, BX
	KMOVW 24(SI), K1
	VMOVUPS.Z (AX)(BX*1), K1, Z0
	MOVQ 16(SI), BX
	VMOVUPS Z0, (DI)(BX*1)
	ADDQ $32, SI
	DECQ DX
	JNZ  pix_run
	ADDQ R11, R12
	ADDQ $56, DI
	DECQ CX
	JNZ  pix_loop
pix_tail:
	TESTQ R13, R13
	JLE  pix_done
pix_last:
	MOVQ R9, SI
	MOVQ R10, DX
pix_last_run:
	MOVQ 0(SI), AX
	MOVQ 8(SI), BX
	ANDQ R12, BX
	KMOVW 24(SI), K1
	VMOVUPS.Z (AX)(BX*1), K1, Z0
	MOVQ 16(SI), BX
	VMOVUPS Z0, K1, (DI)(BX*1)
	ADDQ $32, SI
	DECQ DX
	JNZ  pix_last_run
	ADDQ R11, R12
	ADDQ $56, DI
	DECQ R13
	JNZ  pix_last
pix_done:
	VZEROUPPER
	RET
