"""The paper's reported numbers, quoted verbatim, for display beside ours (never used in computation).

Source: Dong et al., *Residual Contrastive Learning for Image Reconstruction*, Tables 1–3. Keys are our
method names; ``oracle`` is supervised pre-training on the evaluated task, ``sl-den`` supervised
pre-training on denoising transferred to another task.

Layer: studies (data only: imports nothing; read by :mod:`rcl.summary` and :mod:`rcl.sensitivity` to
show the paper's numbers beside ours).
"""

from __future__ import annotations

#: Table 1, proxy denoising: {method: {dataset: (PSNR, SSIM)}}.
TABLE1 = {
    "vader": {"MIT": (14.63, 0.1088), "Stanford": (17.54, 0.1601), "VOC": (16.33, 0.1573)},
    "densecl": {"MIT": (13.78, 0.0910), "Stanford": (16.46, 0.1527), "VOC": (15.33, 0.1373)},
    "pixcontrast": {"MIT": (14.77, 0.1101), "Stanford": (17.61, 0.1610), "VOC": (16.42, 0.1585)},
    "vader+": {"MIT": (19.63, 0.4183), "Stanford": (21.58, 0.4961), "VOC": (20.75, 0.4737)},
    "densecl+": {"MIT": (18.87, 0.3998), "Stanford": (20.58, 0.4705), "VOC": (20.21, 0.4647)},
    "pixcontrast+": {"MIT": (19.87, 0.4121), "Stanford": (21.41, 0.4899), "VOC": (20.82, 0.4858)},
    "n2n": {"MIT": (28.66, 0.8614), "Stanford": (34.14, 0.8699), "VOC": (30.91, 0.8272)},
    "n2s": {"MIT": (28.16, 0.8373), "Stanford": (34.04, 0.8640), "VOC": (30.71, 0.8256)},
    "rcl-bd": {"MIT": (28.83, 0.8871), "Stanford": (34.75, 0.8618), "VOC": (31.29, 0.8274)},
    "rcl-mmd": {"MIT": (28.68, 0.8864), "Stanford": (34.87, 0.8687), "VOC": (31.53, 0.8316)},
    "rcl-emd": {"MIT": (29.54, 0.8908), "Stanford": (35.43, 0.8783), "VOC": (31.39, 0.8330)},
    "oracle": {"MIT": (31.26, 0.9187), "Stanford": (38.25, 0.9422), "VOC": (33.65, 0.9038)},
}

#: Table 2, Stanford: {method: {task: (PSNR, SSIM)}} for ×2 SR and joint denoising + SR.
TABLE2 = {
    "n2n": {"sr": (31.61, 0.8730), "jdensr": (27.90, 0.7860)},
    "n2s": {"sr": (31.11, 0.8699), "jdensr": (27.80, 0.7831)},
    "rcl-bd": {"sr": (38.89, 0.9654), "jdensr": (32.10, 0.8046)},
    "rcl-mmd": {"sr": (38.31, 0.9634), "jdensr": (31.95, 0.8068)},
    "rcl-emd": {"sr": (39.01, 0.9658), "jdensr": (32.63, 0.8214)},
    "sl-den": {"sr": (34.18, 0.9118), "jdensr": (32.89, 0.8353)},
    "oracle": {"sr": (38.93, 0.9603), "jdensr": (35.98, 0.9175)},
}

#: Table 3, VOC denoising: {labels: {"SL": (PSNR, SSIM) or None, "RCL+SL": (PSNR, SSIM)}}.
TABLE3 = {
    0: {"SL": None, "RCL+SL": (22.62, 0.7989)},
    10: {"SL": (20.74, 0.7299), "RCL+SL": (28.20, 0.8834)},
    100: {"SL": (27.19, 0.8734), "RCL+SL": (30.24, 0.9028)},
    1000: {"SL": (31.31, 0.9184), "RCL+SL": (32.09, 0.9280)},
    10000: {"SL": (33.41, 0.9437), "RCL+SL": (33.85, 0.9514)},
}
