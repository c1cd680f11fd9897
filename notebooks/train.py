"""A tiny training script for the quickstart.

Gradient descent on a one-parameter toy problem, fast enough to sweep. Its
flags are the two module-level assignments below (Guild's "globals" style):
``lr`` and ``epochs``. Each epoch prints ``step:`` and ``loss:`` lines, which
become TensorBoard scalars that ``%guild compare`` and ``guild compare`` show.
"""

import time

lr = 0.1
epochs = 5


def train(lr: float, epochs: int) -> float:
    w, target = 0.0, 3.0
    loss = (w - target) ** 2
    for epoch in range(1, epochs + 1):
        w -= lr * 2 * (w - target)  # one gradient step on (w - target)^2
        loss = (w - target) ** 2
        print(f"step: {epoch}")
        print(f"loss: {loss:.6f}", flush=True)
        time.sleep(0.01)
    return loss


final = train(lr, epochs)
print(f"trained {epochs} epochs with lr={lr}: final loss {final:.6f}")
