package fit

import (
	"errors"
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/distributed"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// ReplicaAxis names the one axis of the data-parallel device mesh.
const ReplicaAxis = "replica"

// DataParallel splits every step over several devices of a backend (data parallelism) with GoMLX's
// AutoSharding strategy: the per-example inputs (images [B, ...], labels [B], indices [B]) are
// sharded along their batch axis over a one-axis mesh of n devices named ReplicaAxis; everything
// else (model variables, optimiser state, batch-norm running statistics, memory banks, the
// learning-rate scalar) is replicated. The graph is written for the global batch; XLA's SPMD
// partitioner splits it and inserts the collectives it implies (the all-reduce of the gradients of a
// mean loss, the cross-device batch statistics of batch norms, the gathers of a contrastive loss
// over the global batch). No gradient exchange is written by hand.
//
// A nil *DataParallel means one device: the plain, unsharded path.
type DataParallel struct {
	mesh *distributed.DeviceMesh
	// batch shards axis 0 over ReplicaAxis; replicated copies a tensor to every device.
	batch, replicated *distributed.ShardingSpec
}

// NewDataParallel returns the data-parallel configuration over the first devices devices of
// backend (device numbers 0 … devices-1), or nil for devices == 1 (the plain single-device path,
// which does not touch GoMLX's distributed machinery). The backend must implement AutoSharding
// (GoMLX's XLA backend does; ifa's cpu backend has one device).
func NewDataParallel(backend backends.Backend, devices int) (*DataParallel, error) {
	if devices < 1 {
		return nil, fmt.Errorf("fit: --devices %d: want >= 1", devices)
	}
	if devices == 1 {
		return nil, nil
	}
	if backend == nil {
		return nil, errors.New("fit: data parallelism needs a backend")
	}
	if have := backend.NumDevices(); devices > have {
		return nil, fmt.Errorf("fit: --devices %d: the %s backend has %d device(s) (several devices need --backend xla:cuda on a machine with that many GPUs)",
			devices, backend.Name(), have)
	}
	return newDataParallel(devices)
}

// newDataParallel builds the mesh and sharding specs of n devices, n == 1 included (a one-device
// mesh that still goes through AutoSharding).
func newDataParallel(n int) (*DataParallel, error) {
	mesh, err := distributed.NewDeviceMesh([]int{n}, []string{ReplicaAxis})
	if err != nil {
		return nil, fmt.Errorf("fit: device mesh of %d devices: %w", n, err)
	}
	batch, err := distributed.NewShardingSpec(mesh, distributed.AxisSpec{ReplicaAxis})
	if err != nil {
		return nil, fmt.Errorf("fit: batch sharding over %d devices: %w", n, err)
	}
	return &DataParallel{mesh: mesh, batch: batch, replicated: distributed.NewReplicatedShardingSpec(mesh)}, nil
}

// NumDevices is the number of devices a step runs on (1 for a nil *DataParallel).
func (dp *DataParallel) NumDevices() int {
	if dp == nil {
		return 1
	}
	return dp.mesh.NumDevices()
}

// Mesh is the one-axis device mesh (axis ReplicaAxis); nil for a nil *DataParallel.
func (dp *DataParallel) Mesh() *distributed.DeviceMesh {
	if dp == nil {
		return nil
	}
	return dp.mesh
}

// CheckBatch returns an error unless a global batch of size examples splits evenly over the devices.
func (dp *DataParallel) CheckBatch(size int) error {
	if n := dp.NumDevices(); size%n != 0 {
		return fmt.Errorf("fit: a batch of %d images does not split evenly over %d devices: --batch must be a multiple of --devices", size, n)
	}
	return nil
}

// configure switches exec to AutoSharding over the mesh. Input i is sharded along its axis 0 when
// sharded[i] is true and replicated otherwise; the last entry of sharded also covers any further
// inputs (exec's graph function takes []*graph.Node). Every output (updated variables, the scalar
// losses) is replicated, as are the variables read (the context's default spec).
func (dp *DataParallel) configure(exec *context.Exec, sharded ...bool) {
	specs := make([]*distributed.ShardingSpec, len(sharded))
	for i, s := range sharded {
		specs[i] = dp.replicated
		if s {
			specs[i] = dp.batch
		}
	}
	exec.AutoSharding(dp.mesh).WithInputShardingSpecs(specs...).WithOutputShardingSpecs(dp.replicated)
}

// args splits host tensors into the distributed tensors exec takes: tensor i sharded along its
// axis 0 when sharded[i] (its first dimension must be a multiple of the device count), otherwise
// replicated on every device.
func (dp *DataParallel) args(ts []*tensors.Tensor, sharded []bool) ([]any, error) {
	out := make([]any, len(ts))
	for i, t := range ts {
		spec := dp.replicated
		if sharded[i] {
			spec = dp.batch
			if t.Rank() == 0 || t.Shape().Dim(0)%dp.NumDevices() != 0 {
				return nil, fmt.Errorf("fit: input #%d of shape %s cannot be split along axis 0 over %d devices", i, t.Shape(), dp.NumDevices())
			}
		}
		d, err := distributed.ShardTensor(spec, t)
		if err != nil {
			return nil, fmt.Errorf("fit: sharding input #%d of shape %s over %d devices: %w", i, t.Shape(), dp.NumDevices(), err)
		}
		out[i] = d
	}
	return out, nil
}

// firstDevice keeps the first device's copy of replicated outputs: a distributed Exec returns
// [device0 outputs..., device1 outputs..., ...].
func (dp *DataParallel) firstDevice(outs []*tensors.Tensor) []*tensors.Tensor {
	return outs[:len(outs)/dp.NumDevices()]
}

// padBatch returns t ([B, ...]) grown along axis 0 to size rows, the new rows zero.
func padBatch(t *tensors.Tensor, size int) (*tensors.Tensor, error) {
	shape := t.Shape()
	if shape.Rank() == 0 || shape.Dim(0) > size {
		return nil, fmt.Errorf("fit: cannot pad a tensor of shape %s to %d rows", shape, size)
	}
	if shape.Dim(0) == size {
		return t, nil
	}
	grown := shape.Clone()
	grown.Dimensions[0] = size
	out := tensors.FromShape(grown)
	var err error
	if e := t.ConstBytes(func(src []byte) {
		err = out.MutableBytes(func(dst []byte) { copy(dst, src) })
	}); e != nil {
		return nil, fmt.Errorf("fit: padding a tensor of shape %s: %w", shape, e)
	}
	if err != nil {
		return nil, fmt.Errorf("fit: padding a tensor of shape %s: %w", shape, err)
	}
	return out, nil
}
