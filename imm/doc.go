// Package imm is the Inductive Moment Matching objective (Zhou, Ermon, Song, ICML 2025)
// as specified in shared/DESIGN.md section 5: noise schedules (OT-FM, cosine), the DDIM
// interpolation, the Euler-FM, Simple-EDM and identity parameterisations of
// f_{s,t}(x_t) = c_skip x_t + c_out G(c_in x_t, c_noise(s), c_noise(t)), the mapping
// r(s,t), the loss weighting w(s,t), the grouped Laplace-MMD loss with a stop-gradient
// target branch, label dropout and classifier-free guidance, pushforward and restart
// samplers; a plain flow-matching loss with an Euler sampler as the baseline; and the
// Trainer that runs either objective with AdamW and an EMA of the weights and saves and
// resumes safetensors checkpoints.
//
// Scalar formulas (Config methods) are float64 host code; the per-particle work runs on a
// kernels.Device with element type T (float32 to train, float64 for gradient checks).
package imm
