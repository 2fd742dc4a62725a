// Package torchio reads PyTorch state dicts and reads and writes safetensors files, without
// executing anything from the file.
//
// Formats:
//   - torch.save's zip format (PyTorch ≥ 1.6): an archive <prefix>/{data.pkl, data/<key>, version};
//   - torch.save's legacy format (before 1.6, or _use_new_zipfile_serialization=False): a magic
//     number, a protocol number, a system-information pickle, the object pickle, the list of
//     storage keys, then each storage as an int64 element count and its raw bytes;
//   - safetensors: an 8-byte little-endian header length N, N bytes of JSON, then the data.
//
// The pickle reader is a restricted virtual machine: it knows only the opcodes torch.save emits
// with protocol 2 (plus LONG1, NEWTRUE, TUPLE3 and the Python 2 string opcodes), and the only
// globals it accepts are collections.OrderedDict (called on an empty tuple, BUILD only with a
// {'_metadata': …} state), torch._utils._rebuild_tensor_v2 (6 arguments, or 7 with empty metadata),
// torch._utils._rebuild_tensor (4 arguments), torch._utils._rebuild_parameter (unwrapped to its
// tensor) and the torch.*Storage dtype tags inside 'storage' persistent ids. Any other global is
// rejected with its name ("forbidden global os.system"); nothing is ever called or imported.
//
// Every size is checked against the file: a storage record must hold exactly numel × element size
// bytes, every tensor view must lie inside its storage (overflow-checked), strings, memo and stack
// are capped, and safetensors headers must describe contiguous, non-overlapping data that covers
// the file exactly.
package torchio
