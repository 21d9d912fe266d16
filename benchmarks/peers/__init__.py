"""Adapters that drive the peer libraries (diffusers, k-diffusion) with a mathml score on a mathml
SDE, for the side-by-side sampler benchmarks (``benchmarks/sampler_*.py``).

The peers are benchmark extras, not dependencies of mathml: ``make bench-env`` installs them in
``.venv-bench`` (see requirements-bench.txt). Nothing here is copied from them; the adapters only
convert between their parametrisations and mathml's contract ``score(x, t)``:

- diffusers (discrete time, ε-prediction on x_t = √ᾱ x₀ + √(1 − ᾱ) ε):
  ε̂ = −σ_t ∇log p_t(x_t) (Song et al. 2021, ICLR, eq. 7 with the Gaussian transition).
- k-diffusion (Karras et al. 2022, NeurIPS, §4 and eq. 4 with s(t) = α_t: the scaled state
  x̃ = x / α_t with noise level σ̃ = σ_t / α_t and a denoiser D):
  D(x̃, σ̃) = x̃ + σ̃² ∇log p̃(x̃), ∇log p̃(x̃) = α_t ∇log p_t(α_t x̃) (Tweedie, Efron 2011, eq. 2.8).

Each peer step's continuous time comes from its own noise level through the log-SNR:
λ = log(α²/σ²) = −2 log σ̃, t = ``sde.t_from_log_snr(λ)``, so the exact score is evaluated at the
time the peer's update formula assumes.
"""
