"""STAND-IN SadTalker checkpoints and config for tests and CPU benchmarks.

No registry ships SadTalker's weights, so tests build them: SadTalker's own model classes
(from the installed `sadtalker` package) with their random initial weights, saved in the layout
and under the names of SadTalker's release files (`SadTalker_V0.0.2_{size}.safetensors` with the
audio2exp / audio2pose / face_3drecon / generator / kp_extractor / he_estimator parts, and
`mapping_00229-model.pth.tar`). Shapes are faithful, so loading, preprocessing, batching and
rendering run SadTalker's real code path; the pictures are noise, not faces.

The config folder holds the model hyper-parameters of SadTalker's src/config yamls (only the
keys the inference path reads) and a stand-in `similarity_Lm3D_all.mat`: a 68-point 3D template
whose five alignment points sit where a frontal face's eyes, nose and mouth corners are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from processors.face.sadtalker import CHECKPOINT, MAPPING_CHECKPOINT, load_sadtalker

# The stand-in files (about 850 MB) are built once per machine, in the cache, by this name.
STANDIN_VERSION = "sadtalker-standin-v1"

# Model shapes from SadTalker's src/config (Apache-2.0, OpenTalker/SadTalker).
AUDIO2EXP = {"MODEL": {"FRAMEWORK": "V2"}, "DATASET": {"EXP_DIM": 64, "COEFF_LEN": 73}}
AUDIO2POSE = {
    "DATASET": {"NUM_CLASSES": 46, "FRAME_LEN": 32, "COEFF_LEN": 73},
    "MODEL": {"AUDIOENCODER": {"LEAKY_RELU": True, "NORM": "IN"},
              "DISCRIMINATOR": {"LEAKY_RELU": False, "INPUT_CHANNELS": 6},
              "CVAE": {"AUDIO_EMB_IN_SIZE": 512, "AUDIO_EMB_OUT_SIZE": 6, "SEQ_LEN": 32,
                       "LATENT_SIZE": 64, "ENCODER_LAYER_SIZES": [192, 128],
                       "DECODER_LAYER_SIZES": [128, 192]}},
}
FACERENDER = {"model_params": {
    "common_params": {"num_kp": 15, "image_channel": 3, "feature_channel": 32,
                      "estimate_jacobian": False},
    "kp_detector_params": {"temperature": 0.1, "block_expansion": 32, "max_features": 1024,
                           "scale_factor": 0.25, "num_blocks": 5, "reshape_channel": 16384,
                           "reshape_depth": 16},
    "he_estimator_params": {"block_expansion": 64, "max_features": 2048, "num_bins": 66},
    "generator_params": {"block_expansion": 64, "max_features": 512, "num_down_blocks": 2,
                         "reshape_channel": 32, "reshape_depth": 16, "num_resblocks": 6,
                         "estimate_occlusion_map": True,
                         "dense_motion_params": {"block_expansion": 32, "max_features": 1024,
                                                 "num_blocks": 5, "reshape_depth": 16,
                                                 "compress": 4}},
    "mapping_params": {"coeff_nc": 70, "descriptor_nc": 1024, "layer": 3, "num_kp": 15,
                       "num_bins": 66},
}}
# Frontal-face positions (x right, y up, z towards the camera) of the 68-point indices that
# SadTalker's load_lm3d reads: nose tip 30, eye corners 36/39 and 42/45, mouth corners 48/54.
TEMPLATE = {30: (0.0, 0.0, 0.6), 36: (-0.45, 0.35, 0.1), 39: (-0.15, 0.35, 0.1),
            42: (0.15, 0.35, 0.1), 45: (0.45, 0.35, 0.1), 48: (-0.25, -0.35, 0.2),
            54: (0.25, -0.35, 0.2)}


def build_standin(folder: Path, *, size: int = 256, seed: int = 0) -> tuple[Path, Path]:
    """Write stand-in checkpoints and config under `folder`; returns (checkpoints, config)."""
    import safetensors.torch
    import scipy.io
    import torch
    import yaml
    from yacs.config import CfgNode

    torch.manual_seed(seed)
    st = load_sadtalker()
    checkpoints, config = folder / "checkpoints", folder / "config"
    checkpoints.mkdir(parents=True, exist_ok=True)
    config.mkdir(parents=True, exist_ok=True)
    for name, data in (("auido2exp.yaml", AUDIO2EXP), ("auido2pose.yaml", AUDIO2POSE),
                       ("facerender.yaml", FACERENDER)):
        (config / name).write_text(yaml.safe_dump(data))
    lm = np.zeros((68, 3), np.float64)
    for index, point in TEMPLATE.items():
        lm[index] = point
    scipy.io.savemat(config / "similarity_Lm3D_all.mat", {"lm": lm})

    from importlib import import_module

    pose_cfg = CfgNode(AUDIO2POSE)
    params = FACERENDER["model_params"]
    common = params["common_params"]
    parts = {
        "audio2pose": import_module("sadtalker.audio2pose_models.audio2pose").Audio2Pose(
            pose_cfg, None, device="cpu"),
        "audio2exp": import_module("sadtalker.audio2exp_models.networks").SimpleWrapperV2(),
        "face_3drecon": st.networks.define_net_recon(net_recon="resnet50", use_last_fc=False,
                                                     init_path=""),
        "generator": st.generator.OcclusionAwareSPADEGenerator(**params["generator_params"],
                                                               **common),
        "kp_extractor": st.keypoints.KPDetector(**params["kp_detector_params"], **common),
        "he_estimator": st.keypoints.HEEstimator(**params["he_estimator_params"], **common),
    }
    weights = {f"{prefix}.{key}": value.contiguous()
               for prefix, model in parts.items() for key, value in model.state_dict().items()}
    safetensors.torch.save_file(weights, checkpoints / CHECKPOINT.format(size=size))
    mapping = st.mapping.MappingNet(**params["mapping_params"])
    torch.save({"mapping": mapping.state_dict(), "epoch": 0}, checkpoints / MAPPING_CHECKPOINT)
    return checkpoints, config


def cached_standin() -> tuple[Path, Path]:
    """The stand-in (checkpoints, config) in the cache (AVATAR_CACHE), built on first use."""
    import shutil

    from stack.settings import StackSettings

    folder = StackSettings.from_env().cache / STANDIN_VERSION
    if not (folder / "complete").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        build_standin(folder)
        (folder / "complete").touch()
    return folder / "checkpoints", folder / "config"
