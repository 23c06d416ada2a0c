"""Screen which layer of the warm-up's discriminator a node's cut is seeded on.

    .venv/bin/python bench/head_screen.py --subset 10000 --seeds 0,1,2,3,4,5

Loads the warm-up discriminator `bench/darkness_switch.py` cached for each seed
(bench/out/trunk-*-base.pt) and grows trunk-alone 10-leaf trees (the heaviest
leaf next, the default's seeding cut ``spectral8-floor``) on the unit-length rows
of three layers:

- ``trunk``: the flattened convolutional trunk (what the splitter seeds on);
- ``hidden``: the projection head's hidden layer (after its ReLU);
- ``projection``: the projection head's output, where NT-Xent compares two views,
  so what the views vary is pressed out hardest there;
- ``middle``: the trunk's second map (7x7 at 28 pixels), finer in place than the last;
- ``trunk+middle``: both unit rows side by side (each weighing half).

One JSON line per layer and seed, then each layer's mean and sample sd.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from split_screen import RULES, grow_members, run_screen, screen_parser, trunk_cache

from hctree import engine
from hctree.splitters import hcmgan

LAYERS = ("trunk", "hidden", "projection", "middle", "trunk+middle")


def layer_features(disc, images: np.ndarray, layer: str) -> np.ndarray:
    """Unit rows of ``layer`` for uint8 ``images``, ``[N, D]``."""

    def rows(x: torch.Tensor) -> torch.Tensor:
        if layer in ("middle", "trunk+middle"):
            layers = disc.trunk.layers
            cut = [i for i, m in enumerate(layers) if isinstance(m, torch.nn.LeakyReLU)][1]
            middle = F.normalize(layers[: cut + 1](x).flatten(1).float(), dim=1)
            if layer == "middle":
                return middle
            top = F.normalize(layers[cut + 1 :](layers[: cut + 1](x)).flatten(1).float(), dim=1)
            return torch.cat([top, middle], dim=1) / 2**0.5
        out = disc.features(x).float()
        if layer != "trunk":
            out = disc.p_head[1](disc.p_head[0](out))
            if layer == "projection":
                out = disc.p_head[2](out)
        return F.normalize(out, dim=1)

    return engine.predict_in_batches(rows, torch.from_numpy(images)).numpy()


def cached_discriminator(data, seed: int):
    """The seed's warm-up discriminator, as bench/darkness_switch.py cached it."""
    path = trunk_cache(data, seed, suffix=".pt")
    if not path.exists():
        raise SystemExit(f"{path} is missing: run bench/darkness_switch.py --seed {seed} first.")
    config = hcmgan.Config(**hcmgan.PRESETS["cpu"])
    nets = hcmgan._build_nets(config, 2, False, data.images.shape[1:], seed, torch.device("cpu"))
    disc = nets.discriminators[0]
    disc.load_state_dict(torch.load(path, weights_only=True))
    return disc.eval()


def main() -> None:
    parser = screen_parser(__doc__.splitlines()[0])
    parser.add_argument("--layers", default=",".join(LAYERS))
    args = parser.parse_args()

    discriminators: dict[int, torch.nn.Module] = {}  # by seed: one load per subset

    def tree(layer: str, seed: int, data):
        if seed not in discriminators:
            discriminators[seed] = cached_discriminator(data, seed)
        feats = layer_features(discriminators[seed], data.images, layer)
        return grow_members(feats, args.leaves, RULES["spectral8-floor"], seed)

    run_screen(args, "layer", args.layers.split(","), tree)


if __name__ == "__main__":
    main()
