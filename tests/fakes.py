"""Test doubles shared across test folders: card paths and a fake fit (hand-built draws, no sampling)."""

from __future__ import annotations

import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
RETENTION_CARD = ROOT / "models" / "retention_outreach.toml"
OFFERS_CARD = ROOT / "models" / "retention_offers.toml"
MARKETS_CARD = ROOT / "models" / "multi_market.toml"


class FakeFit:
    """Duck-typed stand-in for bayesdecide.model.fitting.Fit: tau draws near the raw cell effects."""

    def __init__(
        self, effects: xr.Dataset, tau: xr.DataArray, cell_share: xr.DataArray, diagnostics: dict
    ):
        self.effects = effects
        self.cell_share = cell_share
        self.idata = SimpleNamespace(posterior=xr.Dataset({"tau": tau}))
        self.diagnostics = diagnostics
        self.diagnostics_ok = True
        self.lineage = {"fake": True}

    @property
    def tau(self) -> xr.DataArray:
        return self.idata.posterior["tau"]

    @classmethod
    def from_cells(
        cls, cells, *, draws: int = 200, chains: int = 2, seed: int = 0, diagnostics=None
    ):
        from bayesdecide import cell_effects

        return cls.from_effects(
            cell_effects(cells), draws=draws, chains=chains, seed=seed, diagnostics=diagnostics
        )

    @classmethod
    def from_effects(
        cls, eff, *, draws: int = 200, chains: int = 2, seed: int = 0, diagnostics=None
    ):
        """From an EffectTable (e.g. several experiments combined); a multi-arm one gets
        :meth:`flat_prior` draws."""
        if "treatment_arm" in eff.dims:
            return cls.flat_prior(
                eff, draws=draws, chains=chains, seed=seed, diagnostics=diagnostics
            )
        rng = np.random.default_rng(seed)
        e = eff["effect"].values
        sd = np.sqrt(np.diagonal(eff["effect_cov"].values, axis1=1, axis2=2))
        n = (eff["n_control"] + eff["n_treatment"]).values
        w = n / n.sum()
        mean = np.nansum(np.nan_to_num(e) * w[:, None], axis=0)
        e = np.where(np.isnan(e), mean, e)
        sd = np.where(np.isnan(sd), np.nanmax(sd, axis=0), sd)
        k = 1.0 / (1.0 + sd**2 / np.nanvar(e, axis=0))  # crude shrinkage weights
        post = k * e + (1 - k) * mean
        draws_ = post[None, None] + np.sqrt(k) * sd * rng.standard_normal((chains, draws, *e.shape))
        coords = {"cell": eff["cell"].values, "outcome": eff["outcome"].values}
        for f in eff.attrs["factors"]:
            coords[f] = ("cell", eff[f].values)
        tau = xr.DataArray(draws_, dims=("chain", "draw", "cell", "outcome"), coords=coords)
        share = xr.DataArray(w, dims="cell", coords={"cell": eff["cell"].values})
        diag = diagnostics or {"max_rhat": 1.003, "min_ess_bulk": 850.0, "divergences": 0}
        return cls(eff, tau, share, diag)

    @classmethod
    def flat_prior(cls, eff, *, draws=200, chains=2, seed=0, diagnostics=None):
        """Multi-arm EffectTable -> tau (chain, draw, cell, treatment_arm, outcome) drawn from each
        cell's joint normal N(effect, effect_cov) over arms and outcomes: the posterior under a
        flat prior with known sampling covariance (no pooling). An arm without data in a cell gets
        the arm's unit-weighted mean effect with twice the largest standard error of that arm."""
        rng = np.random.default_rng(seed)
        e = eff["effect"].transpose("cell", "treatment_arm", "outcome").values
        cov = (
            eff["effect_cov"]
            .transpose("cell", "treatment_arm", "outcome", "treatment_arm_b", "outcome_b")
            .values
        )
        n_cells, n_arms, k = e.shape
        n = (eff["n_control"] + eff["n_treatment"].sum("treatment_arm")).values
        w = n / n.sum()
        z = rng.standard_normal((chains * draws, n_cells, n_arms * k))
        out = np.empty((chains * draws, n_cells, n_arms, k))
        for c in range(n_cells):
            mean, cc = e[c].ravel(), cov[c].reshape(n_arms * k, n_arms * k)
            missing = ~np.isfinite(mean)
            if missing.any():
                arms_mean = np.nansum(np.nan_to_num(e) * w[:, None, None], axis=0)
                sd = 2 * np.sqrt(np.nanmax(np.einsum("cakak->cak", cov), axis=0))  # (A, K)
                mean = np.where(missing, arms_mean.ravel(), mean)
                cc = np.where(np.isfinite(cc), cc, 0.0)
                cc[missing, missing] = (sd.ravel() ** 2)[missing]
            vals, vecs = np.linalg.eigh((cc + cc.T) / 2)
            root = vecs * np.sqrt(np.clip(vals, 0, None))
            out[:, c] = (mean + z[:, c] @ root.T).reshape(-1, n_arms, k)
        coords = {
            "cell": eff["cell"].values,
            "treatment_arm": eff["treatment_arm"].values,
            "outcome": eff["outcome"].values,
        }
        for f in eff.attrs["factors"]:
            coords[f] = ("cell", eff[f].values)
        tau = xr.DataArray(
            out.reshape(chains, draws, n_cells, n_arms, k),
            dims=("chain", "draw", "cell", "treatment_arm", "outcome"),
            coords=coords,
        )
        share = xr.DataArray(w, dims="cell", coords={"cell": eff["cell"].values})
        diag = diagnostics or {"max_rhat": 1.003, "min_ess_bulk": 850.0, "divergences": 0}
        return cls(eff, tau, share, diag)

    def save(self, path):
        payload = (self.effects, self.idata.posterior["tau"], self.cell_share, self.diagnostics)
        Path(path).write_bytes(pickle.dumps(payload))
        return Path(path)

    @classmethod
    def load(cls, path):
        return cls(*pickle.loads(Path(path).read_bytes()))
