package distill

// Tunables of the distillers, read from the GoMLX context (searched from the method's scope up to the
// root), each with its default beside it. Params lists them all.
const (
	// ParamHintLayer: which student/teacher stage map FitNets matches (RepDistiller hint_layer).
	ParamHintLayer   = "hint_layer"
	DefaultHintLayer = 2

	// ParamRKDDistWeight and ParamRKDAngleWeight weigh RKD's distance and angle terms.
	ParamRKDDistWeight    = "rkd_w_dist"
	DefaultRKDDistWeight  = 25.0
	ParamRKDAngleWeight   = "rkd_w_angle"
	DefaultRKDAngleWeight = 50.0

	// ParamCCFeatDim: the width of CC's linear embeddings.
	ParamCCFeatDim   = "cc_feat_dim"
	DefaultCCFeatDim = 128

	// ParamVIDInitVar: VID's initial predicted variance σ² (softplus(θ) + ε at initialisation).
	ParamVIDInitVar   = "vid_init_var"
	DefaultVIDInitVar = 5.0

	// ParamCRDFeatDim: the width of CRD's embeddings and memory banks.
	ParamCRDFeatDim   = "crd_feat_dim"
	DefaultCRDFeatDim = 128
	// ParamCRDNegatives: K, the negatives per sample.
	ParamCRDNegatives   = "crd_k"
	DefaultCRDNegatives = 16384
	// ParamCRDTemperature: CRD's temperature T.
	ParamCRDTemperature   = "crd_t"
	DefaultCRDTemperature = 0.07
	// ParamCRDMomentum: the memory-bank momentum m in M[i] ← normalise(m·M[i] + (1−m)·v_i).
	ParamCRDMomentum   = "crd_momentum"
	DefaultCRDMomentum = 0.5
)

// Param describes one tunable of the package.
type Param struct {
	Key     string
	Default any
	Doc     string
}

// Params lists the package's tunables with their defaults.
func Params() []Param {
	return []Param{
		{ParamHintLayer, DefaultHintLayer, "FitNets: the stage map index matched (f[hint_layer])"},
		{ParamRKDDistWeight, DefaultRKDDistWeight, "RKD: weight of the distance term"},
		{ParamRKDAngleWeight, DefaultRKDAngleWeight, "RKD: weight of the angle term"},
		{ParamCCFeatDim, DefaultCCFeatDim, "CC: embedding width"},
		{ParamVIDInitVar, DefaultVIDInitVar, "VID: initial predicted variance"},
		{ParamCRDFeatDim, DefaultCRDFeatDim, "CRD: embedding and memory-bank width"},
		{ParamCRDNegatives, DefaultCRDNegatives, "CRD: negatives K per sample"},
		{ParamCRDTemperature, DefaultCRDTemperature, "CRD: temperature"},
		{ParamCRDMomentum, DefaultCRDMomentum, "CRD: memory-bank momentum"},
	}
}
