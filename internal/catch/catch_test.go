package catch

import (
	"errors"
	"io"
	"testing"
)

func failing(v any) (err error) {
	defer Recover(&err, "op: ")
	panic(v)
}

func TestRecover(t *testing.T) {
	if err := failing(io.ErrUnexpectedEOF); !errors.Is(err, io.ErrUnexpectedEOF) || err.Error() != "op: unexpected EOF" {
		t.Errorf("an error panic: %v", err)
	}
	if err := failing("GoMLX says no"); err == nil || err.Error() != "op: GoMLX says no" {
		t.Errorf("a string panic: %v", err)
	}
	ok := func() (err error) {
		defer Recover(&err, "op: ")
		return nil
	}
	if err := ok(); err != nil {
		t.Errorf("no panic: %v", err)
	}
}
