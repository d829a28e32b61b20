# Makes the fixtures of tests/methods/torch_checkpoint_test.cpp "[torch_checkpoint]" with Python
# torch (2.11): torch.save files whose tensors are views into shared storages (storage offsets,
# non-contiguous strides), an nn.Parameter, bf16 / int64 / bool / 0-d tensors, a nested dict beside
# the state dict, at pickle protocols 2 (torch.save's default) and 4; and views.safetensors with
# the same tensors made contiguous: the values the reader must give.
#   python3 tests/data/torch_save/make.py tests/data/torch_save
import collections, sys
import torch
from safetensors.torch import save_file

out = sys.argv[1]
g = torch.Generator().manual_seed(0)
base = torch.randn(6, 5, generator=g)
sd = collections.OrderedDict()
sd["base"] = base
sd["row_slice"] = base[2:4]            # storage offset 10, shares base's storage
sd["transposed"] = base.t()            # stride (1, 5)
sd["column"] = base[:, 3]              # offset 3, stride (5,)
sd["strided"] = base[::2, 1::2]        # offset 1, strides (10, 2)
sd["param"] = torch.nn.Parameter(torch.randn(3, 2, generator=g))
sd["bf16"] = torch.randn(4, generator=g).to(torch.bfloat16)
sd["index"] = torch.arange(-3, 4)
sd["flag"] = torch.tensor([True, False, True])
sd["scalar"] = torch.tensor(1.5)
ckpt = {"state_dict": sd, "meta": {"epoch": 3, "names": ["a", "b"], "lr": 1e-4, "nested": (1, None, True)}}
torch.save(ckpt, f"{out}/views_p2.pth")
torch.save(ckpt, f"{out}/views_p4.pth", pickle_protocol=4)
save_file({k: v.detach().contiguous().clone() for k, v in sd.items()}, f"{out}/views.safetensors")
