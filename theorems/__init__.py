"""One module per theorem of THEOREMS.md; each defines ``THEOREM``.

Registration: add the module name here (order = report order).
"""

MODULES: tuple[str, ...] = (
    "t0_calibration",
    "t1_euler",
    "t2_alignment",
    "t3_norms",
    "t4_data_span",
    "t5_sgd_rank",
    "t6_rank_collapse",
    "t7_rank_two",
    "t8_merging",
    "t9_mild_violations",
)

# The ids of the modules above, in the same order, readable without importing a theorem
# module (the CLI validates --theorem before any heavy import); tests/test_names.py checks
# that they equal the registry's.
THEOREM_IDS: tuple[str, ...] = ("T0", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "MV")
