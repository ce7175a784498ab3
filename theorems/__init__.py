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
