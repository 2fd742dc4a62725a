package torchio

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strings"
)

// Limits of the pickle reader: a state dict needs far less.
const (
	maxPickleString = 1 << 20 // bytes of one string
	maxPickleMemo   = 1 << 20 // memo entries
	maxPickleStack  = 1 << 20 // stack (and mark stack) depth
	maxPickleLong   = 64      // bytes of one LONG1 integer
)

// Python values the reader builds.
type (
	pyNone  struct{}
	pyTuple []any
	pyList  struct{ items []any }
	pyDict  struct {
		keys, vals []any
		index      map[any]int
		ordered    bool
		// metadata is the state an OrderedDict was BUILt with (a state dict's _metadata).
		metadata any
	}
	// pyGlobal is an allowed global: a name, never a callable.
	pyGlobal struct{ module, name string }
	// storageRef is a storage named by a 'storage' persistent id; its bytes come from the
	// container (zip record or legacy section).
	storageRef struct {
		dtype    DType
		key      string
		location string
		numel    int64
	}
	// tensorRef is a view of a storage, as _rebuild_tensor_v2 describes it.
	tensorRef struct {
		storage *storageRef
		offset  int64
		size    []int64
		stride  []int64
	}
	markObj struct{}
)

func newDict(ordered bool) *pyDict { return &pyDict{index: map[any]int{}, ordered: ordered} }

func (d *pyDict) set(k, v any) error {
	switch k.(type) {
	case string, int64, bool, float64, pyNone:
	default:
		return fmt.Errorf("dictionary key of type %s is not supported", typeName(k))
	}
	if i, ok := d.index[k]; ok {
		d.vals[i] = v
		return nil
	}
	d.index[k] = len(d.keys)
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
	return nil
}

func (d *pyDict) get(k any) (any, bool) {
	i, ok := d.index[k]
	if !ok {
		return nil, false
	}
	return d.vals[i], true
}

func typeName(v any) string {
	switch v := v.(type) {
	case pyNone:
		return "None"
	case bool:
		return "bool"
	case int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case pyTuple:
		return "tuple"
	case *pyList:
		return "list"
	case *pyDict:
		if v.ordered {
			return "OrderedDict"
		}
		return "dict"
	case pyGlobal:
		return "global " + v.module + "." + v.name
	case *storageRef:
		return "storage"
	case *tensorRef:
		return "tensor"
	}
	return fmt.Sprintf("%T", v)
}

// storageDTypes maps the storage classes torch.save names in persistent ids to their dtypes.
var storageDTypes = map[string]DType{
	"FloatStorage": F32, "DoubleStorage": F64, "HalfStorage": F16, "BFloat16Storage": BF16,
	"LongStorage": I64, "IntStorage": I32, "ShortStorage": I16, "CharStorage": I8,
	"ByteStorage": U8, "BoolStorage": Bool,
}

// allowedGlobal reports whether module.name may appear in a GLOBAL opcode.
func allowedGlobal(module, name string) bool {
	switch module {
	case "collections":
		return name == "OrderedDict"
	case "torch._utils":
		return name == "_rebuild_tensor_v2" || name == "_rebuild_tensor" || name == "_rebuild_parameter"
	case "torch", "torch.cuda":
		_, ok := storageDTypes[name]
		return ok
	}
	return false
}

// unpickler is a restricted pickle virtual machine: it builds plain values and never calls or
// imports anything.
type unpickler struct {
	data  []byte
	pos   int
	stack []any
	marks []int
	memo  map[uint32]any
	// persistentLoad resolves a persistent id to a storage.
	persistentLoad func(pid pyTuple) (*storageRef, error)
}

// unpickle runs one pickle from data[pos:] and returns its value and the position after STOP.
func unpickle(data []byte, pos int, persistentLoad func(pyTuple) (*storageRef, error)) (any, int, error) {
	u := &unpickler{data: data, pos: pos, memo: map[uint32]any{}, persistentLoad: persistentLoad}
	v, err := u.run()
	if err != nil {
		return nil, u.pos, fmt.Errorf("pickle: %w", err)
	}
	return v, u.pos, nil
}

func (u *unpickler) need(n int) ([]byte, error) {
	if n < 0 || n > len(u.data)-u.pos {
		return nil, fmt.Errorf("truncated at offset %d: %d more bytes needed, %d left", u.pos, n, len(u.data)-u.pos)
	}
	b := u.data[u.pos : u.pos+n]
	u.pos += n
	return b, nil
}

func (u *unpickler) push(v any) error {
	if len(u.stack) >= maxPickleStack {
		return fmt.Errorf("stack deeper than %d", maxPickleStack)
	}
	u.stack = append(u.stack, v)
	return nil
}

func (u *unpickler) pop() (any, error) {
	if len(u.stack) == 0 || (len(u.marks) > 0 && len(u.stack) <= u.marks[len(u.marks)-1]) {
		return nil, fmt.Errorf("stack underflow at offset %d", u.pos)
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) == 0 || (len(u.marks) > 0 && len(u.stack) <= u.marks[len(u.marks)-1]) {
		return nil, fmt.Errorf("stack underflow at offset %d", u.pos)
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark pops everything above the last mark.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, fmt.Errorf("no mark at offset %d", u.pos)
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := append([]any(nil), u.stack[m:]...)
	u.stack = u.stack[:m]
	return items, nil
}

func (u *unpickler) line() (string, error) {
	end := u.pos
	for end < len(u.data) && u.data[end] != '\n' {
		if end-u.pos > 256 {
			return "", fmt.Errorf("GLOBAL name longer than 256 bytes at offset %d", u.pos)
		}
		end++
	}
	if end >= len(u.data) {
		return "", fmt.Errorf("truncated GLOBAL at offset %d", u.pos)
	}
	s := string(u.data[u.pos:end])
	u.pos = end + 1
	return s, nil
}

// opNames names the opcodes this reader rejects, for the error message.
var opNames = map[byte]string{
	'i': "INST", 'o': "OBJ", 0x81: "NEWOBJ", 0x92: "NEWOBJ_EX", 0x93: "STACK_GLOBAL", 0x82: "EXT1",
	0x83: "EXT2", 0x84: "EXT4", 'P': "PERSID", 0x95: "FRAME", 'I': "INT", 'L': "LONG", 'F': "FLOAT",
	'S': "STRING", 'V': "UNICODE", 'p': "PUT", 'g': "GET", 'l': "LIST", 'd': "DICT", '0': "POP",
	'1': "POP_MARK", '2': "DUP", 0x8b: "LONG4", 'C': "SHORT_BINBYTES", 'B': "BINBYTES",
	0x8c: "SHORT_BINUNICODE", 0x8d: "BINUNICODE8", 0x8e: "BINBYTES8", 0x8f: "EMPTY_SET",
	0x90: "ADDITEMS", 0x91: "FROZENSET", 0x94: "MEMOIZE", 0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER",
	0x98: "READONLY_BUFFER",
}

func (u *unpickler) run() (any, error) {
	for {
		if u.pos >= len(u.data) {
			return nil, fmt.Errorf("truncated: no STOP before offset %d", u.pos)
		}
		at := u.pos
		op := u.data[u.pos]
		u.pos++
		var err error
		switch op {
		case 0x80: // PROTO
			var b []byte
			if b, err = u.need(1); err == nil && b[0] > 2 {
				err = fmt.Errorf("pickle protocol %d at offset %d: torch.save writes protocol 2", b[0], at)
			}
		case '.': // STOP
			v, err := u.pop()
			if err != nil {
				return nil, err
			}
			if len(u.stack) != 0 || len(u.marks) != 0 {
				return nil, fmt.Errorf("STOP at offset %d leaves %d values on the stack", at, len(u.stack))
			}
			return v, nil
		case '(': // MARK
			if len(u.marks) >= maxPickleStack {
				return nil, fmt.Errorf("more than %d marks", maxPickleStack)
			}
			u.marks = append(u.marks, len(u.stack))
		case 'N':
			err = u.push(pyNone{})
		case 0x88:
			err = u.push(true)
		case 0x89:
			err = u.push(false)
		case 'K': // BININT1
			var b []byte
			if b, err = u.need(1); err == nil {
				err = u.push(int64(b[0]))
			}
		case 'M': // BININT2
			var b []byte
			if b, err = u.need(2); err == nil {
				err = u.push(int64(binary.LittleEndian.Uint16(b)))
			}
		case 'J': // BININT
			var b []byte
			if b, err = u.need(4); err == nil {
				err = u.push(int64(int32(binary.LittleEndian.Uint32(b))))
			}
		case 0x8a: // LONG1
			err = u.long1()
		case 'G': // BINFLOAT
			var b []byte
			if b, err = u.need(8); err == nil {
				err = u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
			}
		case 'X', 'T': // BINUNICODE, BINSTRING: 4-byte length
			var b []byte
			if b, err = u.need(4); err == nil {
				n := int64(int32(binary.LittleEndian.Uint32(b)))
				if op == 'X' {
					n = int64(binary.LittleEndian.Uint32(b))
				}
				err = u.str(n, at)
			}
		case 'U': // SHORT_BINSTRING
			var b []byte
			if b, err = u.need(1); err == nil {
				err = u.str(int64(b[0]), at)
			}
		case ')':
			err = u.push(pyTuple{})
		case ']':
			err = u.push(&pyList{})
		case '}':
			err = u.push(newDict(false))
		case 't': // TUPLE
			var items []any
			if items, err = u.popMark(); err == nil {
				err = u.push(pyTuple(items))
			}
		case 0x85, 0x86, 0x87: // TUPLE1..3
			n := int(op - 0x84)
			if len(u.stack) < n || (len(u.marks) > 0 && len(u.stack)-n < u.marks[len(u.marks)-1]) {
				return nil, fmt.Errorf("stack underflow at offset %d", at)
			}
			t := pyTuple(append([]any(nil), u.stack[len(u.stack)-n:]...))
			u.stack = u.stack[:len(u.stack)-n]
			err = u.push(t)
		case 'a': // APPEND
			var v any
			if v, err = u.pop(); err == nil {
				err = u.appendTo([]any{v}, at)
			}
		case 'e': // APPENDS
			var items []any
			if items, err = u.popMark(); err == nil {
				err = u.appendTo(items, at)
			}
		case 's': // SETITEM
			var k, v any
			if v, err = u.pop(); err == nil {
				if k, err = u.pop(); err == nil {
					err = u.setItems([]any{k, v}, at)
				}
			}
		case 'u': // SETITEMS
			var items []any
			if items, err = u.popMark(); err == nil {
				err = u.setItems(items, at)
			}
		case 'q', 'r': // BINPUT, LONG_BINPUT
			err = u.put(op == 'r')
		case 'h', 'j': // BINGET, LONG_BINGET
			err = u.get(op == 'j', at)
		case 'c': // GLOBAL
			var module, name string
			if module, err = u.line(); err == nil {
				if name, err = u.line(); err == nil {
					if !allowedGlobal(module, name) {
						return nil, fmt.Errorf("forbidden global %s.%s (GLOBAL %s %s at offset %d): only the globals torch.save writes for tensors and containers are allowed",
							module, name, module, name, at)
					}
					err = u.push(pyGlobal{module, name})
				}
			}
		case 'R': // REDUCE
			var args, fn any
			if args, err = u.pop(); err == nil {
				if fn, err = u.pop(); err == nil {
					var v any
					if v, err = reduce(fn, args); err == nil {
						err = u.push(v)
					} else {
						err = fmt.Errorf("REDUCE at offset %d: %w", at, err)
					}
				}
			}
		case 'b': // BUILD
			err = u.build(at)
		case 'Q': // BINPERSID
			var pid any
			if pid, err = u.pop(); err == nil {
				t, ok := pid.(pyTuple)
				if !ok {
					return nil, fmt.Errorf("persistent id at offset %d is a %s, want a 'storage' tuple", at, typeName(pid))
				}
				var s *storageRef
				if s, err = u.persistentLoad(t); err == nil {
					err = u.push(s)
				} else {
					err = fmt.Errorf("persistent id at offset %d: %w", at, err)
				}
			}
		default:
			name := opNames[op]
			if name == "" {
				name = "unknown"
			}
			return nil, fmt.Errorf("opcode 0x%02x (%s) at offset %d is not allowed", op, name, at)
		}
		if err != nil {
			return nil, err
		}
	}
}

func (u *unpickler) long1() error {
	b, err := u.need(1)
	if err != nil {
		return err
	}
	n := int(b[0])
	if n > maxPickleLong {
		return fmt.Errorf("LONG1 of %d bytes", n)
	}
	if b, err = u.need(n); err != nil {
		return err
	}
	if n <= 8 {
		var v int64
		for i := n - 1; i >= 0; i-- {
			v = v<<8 | int64(b[i])
		}
		if n > 0 && n < 8 && b[n-1]&0x80 != 0 { // sign-extend
			v -= int64(1) << (8 * n)
		}
		return u.push(v)
	}
	be := make([]byte, n)
	for i := range n {
		be[i] = b[n-1-i]
	}
	v := new(big.Int).SetBytes(be)
	if b[n-1]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*n)))
	}
	return u.push(v)
}

func (u *unpickler) str(n int64, at int) error {
	if n < 0 || n > maxPickleString {
		return fmt.Errorf("string of %d bytes at offset %d (limit %d)", n, at, maxPickleString)
	}
	b, err := u.need(int(n))
	if err != nil {
		return err
	}
	return u.push(string(b))
}

// memoIndex reads the memo index of a (LONG_)BINPUT or (LONG_)BINGET.
func (u *unpickler) memoIndex(long bool) (uint32, error) {
	if long {
		b, err := u.need(4)
		if err != nil {
			return 0, err
		}
		return binary.LittleEndian.Uint32(b), nil
	}
	b, err := u.need(1)
	if err != nil {
		return 0, err
	}
	return uint32(b[0]), nil
}

func (u *unpickler) put(long bool) error {
	idx, err := u.memoIndex(long)
	if err != nil {
		return err
	}
	v, err := u.top()
	if err != nil {
		return err
	}
	if _, ok := u.memo[idx]; !ok && len(u.memo) >= maxPickleMemo {
		return fmt.Errorf("memo larger than %d entries", maxPickleMemo)
	}
	u.memo[idx] = v
	return nil
}

func (u *unpickler) get(long bool, at int) error {
	idx, err := u.memoIndex(long)
	if err != nil {
		return err
	}
	v, ok := u.memo[idx]
	if !ok {
		return fmt.Errorf("memo entry %d read at offset %d was never written", idx, at)
	}
	return u.push(v)
}

func (u *unpickler) appendTo(items []any, at int) error {
	t, err := u.top()
	if err != nil {
		return err
	}
	l, ok := t.(*pyList)
	if !ok {
		return fmt.Errorf("APPEND(S) at offset %d on a %s", at, typeName(t))
	}
	if len(l.items)+len(items) > maxPickleStack {
		return fmt.Errorf("list longer than %d at offset %d", maxPickleStack, at)
	}
	l.items = append(l.items, items...)
	return nil
}

func (u *unpickler) setItems(items []any, at int) error {
	if len(items)%2 != 0 {
		return fmt.Errorf("SETITEMS at offset %d with an odd number of values", at)
	}
	t, err := u.top()
	if err != nil {
		return err
	}
	d, ok := t.(*pyDict)
	if !ok {
		return fmt.Errorf("SETITEM(S) at offset %d on a %s", at, typeName(t))
	}
	for i := 0; i < len(items); i += 2 {
		if err := d.set(items[i], items[i+1]); err != nil {
			return fmt.Errorf("SETITEM(S) at offset %d: %w", at, err)
		}
	}
	return nil
}

// build applies BUILD: allowed only on an OrderedDict with a {'_metadata': …} state (what
// Module.state_dict() pickles).
func (u *unpickler) build(at int) error {
	state, err := u.pop()
	if err != nil {
		return err
	}
	t, err := u.top()
	if err != nil {
		return err
	}
	d, ok := t.(*pyDict)
	if !ok || !d.ordered {
		return fmt.Errorf("BUILD at offset %d on a %s: only an OrderedDict's _metadata may be set", at, typeName(t))
	}
	sd, ok := state.(*pyDict)
	if !ok || len(sd.keys) != 1 || sd.keys[0] != "_metadata" {
		return fmt.Errorf("BUILD at offset %d with a %s state: only {'_metadata': ...} is allowed", at, typeName(state))
	}
	d.metadata = sd.vals[0]
	return nil
}

// reduce applies an allowed global to its arguments without calling anything.
func reduce(fn, argv any) (any, error) {
	g, ok := fn.(pyGlobal)
	if !ok {
		return nil, fmt.Errorf("callable is a %s, want an allowed global", typeName(fn))
	}
	args, ok := argv.(pyTuple)
	if !ok {
		return nil, fmt.Errorf("%s.%s: arguments are a %s, want a tuple", g.module, g.name, typeName(argv))
	}
	switch {
	case g.module == "collections" && g.name == "OrderedDict":
		if len(args) != 0 {
			return nil, fmt.Errorf("collections.OrderedDict called with %d arguments, want none", len(args))
		}
		return newDict(true), nil
	case g.module == "torch._utils" && g.name == "_rebuild_tensor_v2":
		// (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
		if len(args) != 6 && len(args) != 7 {
			return nil, fmt.Errorf("_rebuild_tensor_v2 with %d arguments, want 6", len(args))
		}
		if _, ok := args[4].(bool); !ok {
			return nil, fmt.Errorf("_rebuild_tensor_v2: requires_grad is a %s", typeName(args[4]))
		}
		if h, ok := args[5].(*pyDict); !ok || len(h.keys) != 0 {
			return nil, fmt.Errorf("_rebuild_tensor_v2: backward hooks must be an empty OrderedDict, got a %s", typeName(args[5]))
		}
		if len(args) == 7 {
			if m, ok := args[6].(*pyDict); !ok || len(m.keys) != 0 {
				if _, none := args[6].(pyNone); !none {
					return nil, fmt.Errorf("_rebuild_tensor_v2: tensor metadata must be empty, got a %s", typeName(args[6]))
				}
			}
		}
		return rebuildTensor(args[:4])
	case g.module == "torch._utils" && g.name == "_rebuild_tensor":
		if len(args) != 4 {
			return nil, fmt.Errorf("_rebuild_tensor with %d arguments, want 4", len(args))
		}
		return rebuildTensor(args)
	case g.module == "torch._utils" && g.name == "_rebuild_parameter":
		// (data, requires_grad, backward_hooks): the parameter is its tensor.
		if len(args) != 3 {
			return nil, fmt.Errorf("_rebuild_parameter with %d arguments, want 3", len(args))
		}
		t, ok := args[0].(*tensorRef)
		if !ok {
			return nil, fmt.Errorf("_rebuild_parameter of a %s, want a tensor", typeName(args[0]))
		}
		if h, ok := args[2].(*pyDict); !ok || len(h.keys) != 0 {
			return nil, fmt.Errorf("_rebuild_parameter: backward hooks must be an empty OrderedDict, got a %s", typeName(args[2]))
		}
		return t, nil
	}
	return nil, fmt.Errorf("global %s.%s may not be called", g.module, g.name)
}

// rebuildTensor checks (storage, offset, size, stride) and returns the view.
func rebuildTensor(args []any) (*tensorRef, error) {
	s, ok := args[0].(*storageRef)
	if !ok {
		return nil, fmt.Errorf("tensor storage is a %s", typeName(args[0]))
	}
	off, ok := args[1].(int64)
	if !ok || off < 0 {
		return nil, fmt.Errorf("tensor storage offset %v is not a non-negative int", args[1])
	}
	size, err := intTuple(args[2], "size")
	if err != nil {
		return nil, err
	}
	stride, err := intTuple(args[3], "stride")
	if err != nil {
		return nil, err
	}
	if len(size) != len(stride) {
		return nil, fmt.Errorf("tensor size %v and stride %v differ in rank", size, stride)
	}
	if len(size) > 32 {
		return nil, fmt.Errorf("tensor of rank %d", len(size))
	}
	// Every element must lie in the storage: offset + Σ(size−1)·stride < numel.
	numel := int64(1)
	for _, d := range size {
		var ok bool
		if numel, ok = checkedMul(numel, d); !ok {
			return nil, fmt.Errorf("tensor size %v overflows", size)
		}
	}
	if numel > 0 {
		last := off
		for i, d := range size {
			step, ok := checkedMul(d-1, stride[i])
			if ok {
				last, ok = checkedAdd(last, step)
			}
			if !ok {
				return nil, fmt.Errorf("tensor view (offset %d, size %v, stride %v) overflows", off, size, stride)
			}
		}
		if last >= s.numel {
			return nil, fmt.Errorf("tensor view (offset %d, size %v, stride %v) reaches element %d of a storage of %d",
				off, size, stride, last, s.numel)
		}
		if numel > s.numel {
			return nil, fmt.Errorf("tensor of %d elements overlaps itself in a storage of %d", numel, s.numel)
		}
	}
	return &tensorRef{storage: s, offset: off, size: size, stride: stride}, nil
}

func intTuple(v any, what string) ([]int64, error) {
	t, ok := v.(pyTuple)
	if !ok {
		return nil, fmt.Errorf("tensor %s is a %s, want a tuple", what, typeName(v))
	}
	out := make([]int64, len(t))
	for i, e := range t {
		n, ok := e.(int64)
		if !ok || n < 0 {
			return nil, fmt.Errorf("tensor %s %v: entry %d is not a non-negative int", what, t, i)
		}
		out[i] = n
	}
	return out, nil
}

// storageFromPID checks a 'storage' persistent id: ('storage', StorageClass, key, location, numel)
// in the zip format, with a sixth entry view_metadata = None in the legacy format.
func storageFromPID(pid pyTuple, legacy bool) (*storageRef, error) {
	want := 5
	if legacy {
		want = 6
	}
	if len(pid) == 0 || pid[0] != "storage" {
		tag := "empty"
		if len(pid) > 0 {
			tag = fmt.Sprintf("%v", pid[0])
		}
		return nil, fmt.Errorf("persistent id of kind %q: only 'storage' ids (tensor data) are allowed", tag)
	}
	if len(pid) != want {
		return nil, fmt.Errorf("'storage' persistent id with %d entries, want %d", len(pid), want)
	}
	g, ok := pid[1].(pyGlobal)
	dt, known := storageDTypes[g.name]
	if !ok || !known || (g.module != "torch" && g.module != "torch.cuda") {
		return nil, fmt.Errorf("storage type is a %s, want a torch.*Storage class", typeName(pid[1]))
	}
	key, ok1 := pid[2].(string)
	loc, ok2 := pid[3].(string)
	numel, ok3 := pid[4].(int64)
	if !ok1 || !ok2 || !ok3 || numel < 0 || len(key) == 0 || len(key) > 64 || strings.ContainsAny(key, "/\\") {
		return nil, fmt.Errorf("malformed storage id %v", []any(pid))
	}
	if legacy {
		if _, ok := pid[5].(pyNone); !ok {
			return nil, fmt.Errorf("storage %s is a view (view_metadata %v): not supported", key, pid[5])
		}
	}
	return &storageRef{dtype: dt, key: key, location: loc, numel: numel}, nil
}

// storageTable deduplicates storages by key.
type storageTable struct {
	byKey map[string]*storageRef
	order []string
}

func (t *storageTable) load(pid pyTuple, legacy bool) (*storageRef, error) {
	s, err := storageFromPID(pid, legacy)
	if err != nil {
		return nil, err
	}
	if t.byKey == nil {
		t.byKey = map[string]*storageRef{}
	}
	if old, ok := t.byKey[s.key]; ok {
		if old.dtype != s.dtype || old.numel != s.numel {
			return nil, fmt.Errorf("storage %s named twice with different types or sizes", s.key)
		}
		return old, nil
	}
	t.byKey[s.key] = s
	t.order = append(t.order, s.key)
	return s, nil
}

// materialize copies a tensor view out of its storage's bytes into a contiguous tensor.
func materialize(t *tensorRef, storage []byte) (*Tensor, error) {
	es := int64(t.storage.dtype.Size())
	if int64(len(storage)) != t.storage.numel*es {
		return nil, fmt.Errorf("storage %s holds %d bytes, want %d", t.storage.key, len(storage), t.storage.numel*es)
	}
	shape := make([]int, len(t.size))
	numel := int64(1)
	for i, d := range t.size {
		shape[i] = int(d)
		numel *= d
	}
	out := &Tensor{DType: t.storage.dtype, Shape: shape, Data: make([]byte, numel*es)}
	if numel == 0 {
		return out, nil
	}
	// Row-major contiguous views are one copy.
	contiguous, want := true, int64(1)
	for i := len(t.size) - 1; i >= 0; i-- {
		if t.size[i] != 1 && t.stride[i] != want {
			contiguous = false
			break
		}
		want *= t.size[i]
	}
	if contiguous {
		copy(out.Data, storage[t.offset*es:(t.offset+numel)*es])
		return out, nil
	}
	idx := make([]int64, len(t.size))
	for n := int64(0); n < numel; n++ {
		src := t.offset
		for i, j := range idx {
			src += j * t.stride[i]
		}
		copy(out.Data[n*es:(n+1)*es], storage[src*es:(src+1)*es])
		for i := len(idx) - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < t.size[i] {
				break
			}
			idx[i] = 0
		}
	}
	return out, nil
}
