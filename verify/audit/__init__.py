"""Audit your own model in one call (:func:`audit`): the harness's certificate of the given
weights, a per-layer table, and the verdicts of the theorems whose assumptions it meets.

    from verify.audit import audit
    a = audit(model, X, y, lam=1e-3, loss="ce")   # model: an nn.Sequential
    a.certificate, a.layers, a.checks             # certificate, DataFrame, theorems
    a.polish().report("reports/audit")            # continue to a certified point, report

Needs the ``audit`` extra (pandas; safetensors for .safetensors files).
"""

from verify.audit.convert import load_weights
from verify.audit.core import Audit, Check, Movement, audit
from verify.nets.conv2d import ConvNet
from verify.nets.dense import Architecture

__all__ = ["Architecture", "Audit", "Check", "ConvNet", "Movement", "audit", "load_weights"]
