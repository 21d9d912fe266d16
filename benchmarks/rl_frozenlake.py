"""FrozenLake 8x8 without gymnasium: the map and a slip-probability family of variants.

gymnasium's slippery FrozenLake moves in the intended direction or either perpendicular one with
probability 1/3 each; variant ``slip`` moves as intended with 1 - slip and perpendicular with
slip / 2 each (slip = 2/3 is gymnasium's). Entering G pays +1; H and G are absorbing, reward 0.
Actions: 0 left, 1 down, 2 right, 3 up. Needs only torch (for the GPU machine).
"""

from __future__ import annotations

import torch

MAP_8X8 = ["SFFFFFFF", "FFFFFFFF", "FFFHFFFF", "FFFFFHFF", "FFFHFFFF", "FHHFFFHF", "FHFFHFHF", "FFFHFFFG"]
MOVES = ((0, -1), (1, 0), (0, 1), (-1, 0))


def frozenlake_batch(slips: torch.Tensor, desc=MAP_8X8) -> tuple[torch.Tensor, torch.Tensor]:
    """P: (B, 4, S, S) and R: (B, S, 4) for each slip probability in ``slips: (B,)``."""
    n_rows, n_cols = len(desc), len(desc[0])
    S = n_rows * n_cols
    B = slips.shape[0]
    dt = slips.dtype
    P = torch.zeros(B, 4, S, S, dtype=dt)
    R = torch.zeros(B, S, 4, dtype=dt)
    for s in range(S):
        r, c = divmod(s, n_cols)
        for a in range(4):
            if desc[r][c] in "HG":
                P[:, a, s, s] = 1.0
                continue
            for m, w in ((a, None), ((a - 1) % 4, "side"), ((a + 1) % 4, "side")):
                p = 1.0 - slips if w is None else slips / 2
                nr = min(max(r + MOVES[m][0], 0), n_rows - 1)
                nc = min(max(c + MOVES[m][1], 0), n_cols - 1)
                s2 = nr * n_cols + nc
                P[:, a, s, s2] += p
                if desc[nr][nc] == "G":
                    R[:, s, a] += p
    return P, R
