"""One rank of a multi-process run: train, then save this rank's trained weights as OUTPUT/rank<R>.safetensors.

Started by `torch.distributed.run` from test_multiprocess.py: DATASET BASE OUTPUT STEPS.
"""

import os
import sys
from pathlib import Path

from safetensors.torch import save_file

from hierafash_train.loop import TrainConfig, train

dataset, base, output, steps = sys.argv[1:5]
result = train(TrainConfig(dataset=dataset, base=base, output=output, steps=int(steps), batch_size=2, lr=1e-3,
                           progress=False, checkpoint_every=1))
rank = os.environ["RANK"]
state = {k: v.detach().contiguous() for k, v in result.trained.state_dict().items()}
save_file(state, str(Path(output) / f"rank{rank}.safetensors"))
print(f"rank {rank} of {os.environ['WORLD_SIZE']}: {len(result.losses)} steps, losses {result.losses}")
