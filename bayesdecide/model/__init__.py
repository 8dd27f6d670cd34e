"""The hierarchical treatment-effect model: terms, priors, the marginal engine, the fit.

Submodules are imported where used (``bayesdecide.model.fitting`` pulls in PyMC and numba); this
package module imports nothing, so ``bayesdecide.model.defaults`` stays cheap for the card stage.
"""
