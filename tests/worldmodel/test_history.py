"""`worldmodel.history`: padding an episode's frames as an agent stacks them."""

import torch

from worldmodel.history import FrameHistory, pad_history


def test_pad_history_puts_the_first_frame_in_front_as_an_agent_stacks_it():
    frames = torch.randint(0, 256, (5, 3, 4, 4), dtype=torch.uint8)
    padded = pad_history(frames, 3)
    assert padded.shape == (7, 3, 4, 4)
    history = FrameHistory(1, 3)
    for t in range(5):
        stack = history.push(frames[t:t + 1], torch.tensor([t == 0]))
        assert torch.equal(stack[0], padded[t:t + 3].flatten(0, 1))
    assert torch.equal(pad_history(frames, 1), frames)
