"""One module per theorem of THEOREMS.md; each defines ``THEOREM``.

Registration: add the module name here (order = report order).
"""

MODULES: tuple[str, ...] = (
    "t0_calibration",
    "t1_euler",
    "t2_alignment",
    "t3_norms",
    "t4_data_span",
    "t6_rank_collapse",
    "t8_merging",
)
