"""The ring's communication: each rank sends tensors to the next rank and receives the previous
rank's, with torch.distributed's batched point-to-point operations (NCCL on GPUs, gloo on CPUs).

The exchange is started before the current block's computation and waited for after it, so the
transfer overlaps the attention. On CUDA, ProcessGroupNCCL runs point-to-point operations on its
own internal stream (the separate communication stream) after an event on the stream that issued
them; `wait()` makes the current stream wait for the transfer, without blocking the host.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.distributed as dist


class Pending:
    """An exchange in flight: `wait()` returns the received tensors."""

    def __init__(self, requests, received, sent=()) -> None:
        self._requests = requests
        self._received = received
        self._sent = sent  # kept alive until the transfer is done

    def wait(self) -> list[torch.Tensor]:
        for request in self._requests:
            request.wait()
        self._requests = self._sent = ()
        return self._received


class Ring:
    """The ranks of a process group arranged in a ring, in group-rank order."""

    def __init__(self, group=None) -> None:
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError(
                "flash_attention_swift: ring attention needs torch.distributed initialized "
                "(torch.distributed.init_process_group) or a process group"
            )
        self.group = group
        self.world_size = dist.get_world_size(group)
        self.rank = dist.get_rank(group)
        everyone = group if group is not None else dist.group.WORLD
        # P2POp takes global ranks.
        self.next = dist.get_global_rank(everyone, (self.rank + 1) % self.world_size)
        self.previous = dist.get_global_rank(everyone, (self.rank - 1) % self.world_size)

    def exchange(self, tensors: Sequence[torch.Tensor]) -> Pending:
        """Sends `tensors` to the next rank and receives the same shapes from the previous one."""
        received = [torch.empty_like(tensor, memory_format=torch.contiguous_format) for tensor in tensors]
        if self.world_size == 1:
            for target, tensor in zip(received, tensors):
                target.copy_(tensor)
            return Pending((), received)
        sent = [tensor.contiguous() for tensor in tensors]
        operations = [dist.P2POp(dist.isend, tensor, self.next, self.group) for tensor in sent]
        operations += [dist.P2POp(dist.irecv, target, self.previous, self.group) for target in received]
        return Pending(dist.batch_isend_irecv(operations), received, sent)
