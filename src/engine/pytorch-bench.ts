// The PyTorch side of `nad bench`: the same NAD step (WRN-16-1 in NAD's layout, batch 64, student
// forward + backward, teacher forward, attention loss with betas 500/1000/1000, SGD Nesterov) and
// inference (batch 256) on random data, timed the same way. Shipped as a string so that the bundled
// CLI can run it with any Python that has torch; it prints one JSON line.
export const PYTORCH_BENCH_SOURCE = String.raw`
import json, sys, time, os
import torch, torch.nn as nn, torch.nn.functional as F

steps, warmup, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
if threads > 0:
    torch.set_num_threads(threads)

class Block(nn.Module):
    def __init__(s, i, o, stride):
        super().__init__()
        s.bn1, s.conv1 = nn.BatchNorm2d(i), nn.Conv2d(i, o, 3, stride, 1, bias=False)
        s.bn2, s.conv2 = nn.BatchNorm2d(o), nn.Conv2d(o, o, 3, 1, 1, bias=False)
        s.equal = i == o
        s.convShortcut = None if s.equal else nn.Conv2d(i, o, 1, stride, 0, bias=False)
    def forward(s, x):
        a = F.relu(s.bn1(x))
        out = s.conv2(F.relu(s.bn2(s.conv1(a))))
        return out + (x if s.equal else s.convShortcut(a))

class WRN(nn.Module):
    def __init__(s, depth=16, k=1, classes=10):
        super().__init__()
        n = (depth - 4) // 6; w = [16, 16 * k, 32 * k, 64 * k]
        s.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        def group(i, o, st):
            m = nn.Module(); m.layer = nn.Sequential(*[Block(i if j == 0 else o, o, st if j == 0 else 1) for j in range(n)]); return m
        s.block1, s.block2, s.block3 = group(w[0], w[1], 1), group(w[1], w[2], 2), group(w[2], w[3], 2)
        s.bn1, s.fc = nn.BatchNorm2d(w[3]), nn.Linear(w[3], classes)
    def forward(s, x):
        a1 = s.block1.layer(s.conv1(x)); a2 = s.block2.layer(a1); a3 = s.block3.layer(a2)
        return [a1, a2, a3], s.fc(F.avg_pool2d(F.relu(s.bn1(a3)), 8).flatten(1))

def at(f):
    a = f.abs().pow(2).sum(1, keepdim=True)
    return a / (a.norm(dim=(2, 3), keepdim=True) + 1e-6)

student, teacher = WRN(), WRN()
teacher.eval()
opt = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4, nesterov=True)
x = torch.rand(64, 3, 32, 32)
y = torch.randint(0, 10, (64,))
betas = [500.0, 1000.0, 1000.0]

def nad_step():
    student.train()
    with torch.no_grad():
        tg, _ = teacher(x)
    sg, logits = student(x)
    loss = F.cross_entropy(logits, y)
    for b, s, t in zip(betas, sg, tg):
        loss = loss + b * F.mse_loss(at(s), at(t))
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()

def timed(fn, n):
    out = []
    for _ in range(n):
        t = time.perf_counter(); fn(); out.append(time.perf_counter() - t)
    return sorted(out)

for _ in range(warmup):
    nad_step()
train = timed(nad_step, steps)
xi = torch.rand(256, 3, 32, 32)
def infer():
    student.eval()
    with torch.no_grad():
        student(xi)[1].sum().item()
infer()
inf = timed(infer, max(3, steps // 2))
med = lambda v: v[len(v) // 2]
print(json.dumps({
    "torch": torch.__version__, "threads": torch.get_num_threads(),
    "nadImgPerSec": 64 / med(train), "nadImgPerSecBest": 64 / train[0],
    "inferenceImgPerSec": 256 / med(inf), "stepMs": [t * 1000 for t in train],
}))
`;
