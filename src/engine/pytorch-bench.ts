// The PyTorch side of `nad bench`: the same NAD step (WRN-16-1 in NAD's layout, batch 64, student
// forward + backward, teacher forward, attention loss with betas 500/1000/1000, SGD Nesterov) and
// inference (batch 256) on random data, timed the same way; and a twin of each defense unit of
// bench-defenses.ts, with the sizes it passes, written as the reference code computes it:
//  - finetune: NAD's train step with betas 0 (cross-entropy, SGD Nesterov).
//  - fine-pruning: BackdoorBench defense/fp.py's ranking pass: a forward hook on the features the classifier
//    reads (here relu(bn1(block3))), their per-channel mean over the images, evaluation mode, no_grad.
//  - neural-cleanse: nc.py (from VinAI's input-aware-backdoor release) train step: mask and pattern in tanh
//    space, (1 - m) x + m p, CE + cost * |m|_1, Adam (lr 0.1, betas 0.5/0.9), the classifier frozen in eval.
//  - mcr: one step of BackdoorBench's curves (Bezier, 3 bends): w(t) = (1-t)^2 w0 + 2t(1-t) theta + t^2 w1
//    by torch.nn.utils.stateless.functional_call, training mode, backward to theta, SGD momentum 0.9, wd 5e-4.
//  - strip: 64 superimposed copies x + alpha o per input through the model (evaluation mode, batches of 256),
//    entropy of softmax + 1e-8, mean per input (BackdoorBench's STRIP forwards one overlay for a batch of inputs).
//  - anp: csdongxian/ANP_backdoor mask_train: NoisyBatchNorm2d, noise ~ U(-eps, eps), one ascent step on -CE
//    with sign gradients (SGD lr eps / steps), then alpha CE(clean) + (1 - alpha) CE(perturbed), SGD on the
//    masks (momentum 0.9), clamp. As the authors' code, the weights keep requires_grad (their gradients are
//    computed and not used).
//  - clp: CLP_prune's loop: per BatchNorm2d, the last Conv2d before it, torch.svd of each output channel's
//    [cin, kh*kw] weight times |gamma / std|, largest singular value; the layer's mean + u * std.
//  - i-bau: hypergrad.fixed_point (I-BAU's hypergrad.py, from hypertorch) with GradientDescent(loss_inner, 0.1)
//    as fp_map: create_graph gradient of the inner loss, K vector-Jacobian products, the mixed term; eval mode.
// And of each attack unit of bench-attacks.ts (its ATTACK_SIZES are merged into the same sizes object):
//  - cl: one step of BackdoorBench's PGD (resource/label-consistent/craft_adv_dataset.py): the model in eval
//    mode, torch.autograd.grad of CE with respect to the input only, adv + alpha * sign(grad), projected to the
//    eps-ball and [0, 1]; the iterate carries over from call to call.
//  - wanet: the authors' grid_temps from the same k x k noise (bicubic upsample, identity grid, s / H,
//    grid_rescale, clamp), repeated over the batch once (setup); timed: uint8 -> float, F.grid_sample
//    (bilinear, zeros, align_corners=True), -> uint8 (truncation, as ToPILImage's x.mul(255).byte()).
// Shipped as a string so that the bundled CLI can run it with any Python that has torch; it prints one
// JSON line. argv: steps warmup threads [config JSON: {"nad": bool, "defenses": [names], "sizes": {...}}];
// a twin that fails reports {"error": ...} in its place and the others still run. With "serve": true in the
// config it prints that line and then times one twin call per name read from stdin (pytorch-run.ts), so
// that `nad bench` can alternate engine and PyTorch calls under the same load.
export const PYTORCH_BENCH_SOURCE = String.raw`
import json, sys, time, os
import torch, torch.nn as nn, torch.nn.functional as F

steps, warmup, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
cfg = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {"nad": True, "defenses": [], "sizes": {}}
Z = cfg["sizes"]
torch.manual_seed(0)
if threads > 0:
    torch.set_num_threads(threads)

class Block(nn.Module):
    def __init__(s, i, o, stride, bn):
        super().__init__()
        s.bn1, s.conv1 = bn(i), nn.Conv2d(i, o, 3, stride, 1, bias=False)
        s.bn2, s.conv2 = bn(o), nn.Conv2d(o, o, 3, 1, 1, bias=False)
        s.equal = i == o
        s.convShortcut = None if s.equal else nn.Conv2d(i, o, 1, stride, 0, bias=False)
    def forward(s, x):
        a = F.relu(s.bn1(x))
        out = s.conv2(F.relu(s.bn2(s.conv1(a))))
        return out + (x if s.equal else s.convShortcut(a))

class WRN(nn.Module):
    def __init__(s, depth=16, k=1, classes=10, bn=nn.BatchNorm2d):
        super().__init__()
        n = (depth - 4) // 6; w = [16, 16 * k, 32 * k, 64 * k]
        s.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        def group(i, o, st):
            m = nn.Module(); m.layer = nn.Sequential(*[Block(i if j == 0 else o, o, st if j == 0 else 1, bn) for j in range(n)]); return m
        s.block1, s.block2, s.block3 = group(w[0], w[1], 1), group(w[1], w[2], 2), group(w[2], w[3], 2)
        s.bn1, s.fc = bn(w[3]), nn.Linear(w[3], classes)
    def forward(s, x):
        a1 = s.block1.layer(s.conv1(x)); a2 = s.block2.layer(a1); a3 = s.block3.layer(a2)
        return [a1, a2, a3], s.fc(F.avg_pool2d(F.relu(s.bn1(a3)), 8).flatten(1))

def at(f):
    a = f.abs().pow(2).sum(1, keepdim=True)
    return a / (a.norm(dim=(2, 3), keepdim=True) + 1e-6)

def timed(fn, n):
    out = []
    for _ in range(n):
        t = time.perf_counter(); fn(); out.append(time.perf_counter() - t)
    return sorted(out)

med = lambda v: v[len(v) // 2]
rand = lambda n: torch.rand(n, 3, 32, 32)
labels = lambda n: torch.arange(n) % 10
result = {"torch": torch.__version__, "threads": torch.get_num_threads()}

if cfg["nad"]:
    student, teacher = WRN(), WRN()
    teacher.eval()
    opt = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4, nesterov=True)
    x, y = rand(64), torch.randint(0, 10, (64,))
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
    for _ in range(warmup):
        nad_step()
    train = timed(nad_step, steps)
    xi = rand(256)
    def infer():
        student.eval()
        with torch.no_grad():
            student(xi)[1].sum().item()
    infer()
    inf = timed(infer, max(3, steps // 2))
    result.update({"nadImgPerSec": 64 / med(train), "nadImgPerSecBest": 64 / train[0],
                   "inferenceImgPerSec": 256 / med(inf), "stepMs": [t * 1000 for t in train]})

# Each twin: a setup returning (one call, work per call); "rate" = work / s, "seconds" = s per call.
def finetune():
    m, n = WRN(), Z["finetuneBatch"]
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4, nesterov=True)
    x, y = rand(n), labels(n)
    def step():
        m.train(); loss = F.cross_entropy(m(x)[1], y)
        opt.zero_grad(); loss.backward(); opt.step(); return loss.item()
    return step, n

def fine_pruning():
    m, n, b = WRN().eval(), Z["rankingImages"], Z["evalBatch"]
    data = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8)
    feats = {}
    m.bn1.register_forward_hook(lambda mod, i, o: feats.__setitem__("f", F.relu(o)))
    def rank():
        total = torch.zeros(m.bn1.num_features, dtype=torch.float64)
        with torch.no_grad():
            for s in range(0, n, b):
                m(data[s:s + b].float() / 255)
                total += feats["f"].sum(dim=(0, 2, 3)).double()
        return (total / (n * 64)).tolist()
    return rank, n

def neural_cleanse():
    m, n = WRN().eval(), Z["ncBatch"]
    for p in m.parameters():
        p.requires_grad_(False)
    mask_tanh = torch.ones(1, 1, 32, 32, requires_grad=True)
    pattern_tanh = torch.ones(1, 3, 32, 32, requires_grad=True)
    opt = torch.optim.Adam([mask_tanh, pattern_tanh], lr=Z["ncLr"], betas=(0.5, 0.9))
    x, target = rand(n), torch.zeros(n, dtype=torch.long)
    def step():
        mask = torch.tanh(mask_tanh) / (2 + 1e-7) + 0.5
        pattern = torch.tanh(pattern_tanh) / (2 + 1e-7) + 0.5
        logits = m((1 - mask) * x + mask * pattern)[1]
        ce = F.cross_entropy(logits, target); reg = torch.norm(mask, 1)
        loss = ce + Z["ncCost"] * reg
        opt.zero_grad(); loss.backward(); opt.step()
        return loss.item(), reg.item(), (logits.argmax(1) == target).sum().item()
    return step, n

def mcr():
    from torch.nn.utils.stateless import functional_call
    w0, w1, theta, curve = WRN(), WRN(), WRN(), WRN()
    with torch.no_grad():
        for c, a, b in zip(theta.parameters(), w0.parameters(), w1.parameters()):
            c.copy_(0.5 * a + 0.5 * b)
    for p in list(w0.parameters()) + list(w1.parameters()):
        p.requires_grad_(False)
    names = [k for k, _ in curve.named_parameters()]
    opt = torch.optim.SGD(theta.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    n = Z["curveBatch"]; x, y = rand(n), labels(n)
    def step():
        t = float(torch.rand(1))
        a, b, c = (1 - t) ** 2, 2 * t * (1 - t), t * t
        w = {k: a * p0 + b * pc + c * p1 for k, p0, pc, p1 in zip(names, w0.parameters(), theta.parameters(), w1.parameters())}
        curve.train()
        loss = F.cross_entropy(functional_call(curve, w, (x,))[1], y)
        opt.zero_grad(); loss.backward(); opt.step(); return loss.item()
    return step, n

def strip():
    m = WRN().eval()
    k, N, alpha, b = Z["stripInputs"], Z["stripOverlays"], Z["stripAlpha"], Z["evalBatch"]
    inputs = torch.randint(0, 256, (k, 3, 32, 32), dtype=torch.uint8).float() / 255
    pool = torch.randint(0, 256, (Z["stripPool"], 3, 32, 32), dtype=torch.uint8).float() / 255
    def entropies():
        idx = torch.stack([torch.randperm(len(pool))[:N] for _ in range(k)])
        mixed = (inputs[:, None] + alpha * pool[idx]).reshape(k * N, 3, 32, 32)
        h = []
        with torch.no_grad():
            for s in range(0, k * N, b):
                p = F.softmax(m(mixed[s:s + b])[1], 1) + 1e-8
                h.append(-(p * p.log()).sum(1))
        return torch.cat(h).reshape(k, N).double().mean(1).tolist()
    return entropies, k * N

class NoisyBN(nn.BatchNorm2d):
    def __init__(s, c):
        super().__init__(c)
        s.neuron_mask = nn.Parameter(torch.ones(c))
        s.neuron_noise = nn.Parameter(torch.zeros(c))
        s.neuron_noise_bias = nn.Parameter(torch.zeros(c))
        s.perturbed = False
    def forward(s, x):
        if s.perturbed:
            w, b = s.weight * (s.neuron_mask + s.neuron_noise), s.bias * (1 + s.neuron_noise_bias)
        else:
            w, b = s.weight * s.neuron_mask, s.bias
        return F.batch_norm(x, s.running_mean, s.running_var, w, b, s.training, s.momentum, s.eps)

def anp():
    m, o = WRN(bn=NoisyBN), Z["anp"]
    bns = [b for b in m.modules() if isinstance(b, NoisyBN)]
    masks = [b.neuron_mask for b in bns]
    noise = [p for b in bns for p in (b.neuron_noise, b.neuron_noise_bias)]
    mask_opt = torch.optim.SGD(masks, lr=o["lr"], momentum=0.9)
    noise_opt = torch.optim.SGD(noise, lr=o["eps"] / o["steps"])
    n = Z["anpBatch"]; x, y = rand(n), labels(n)
    def perturb(on):
        for b in bns:
            b.perturbed = on
    def step():
        m.train()
        with torch.no_grad():
            for p in noise:
                p.uniform_(-o["eps"], o["eps"])
        for _ in range(o["steps"]):
            noise_opt.zero_grad(); perturb(True)
            (-F.cross_entropy(m(x)[1], y)).backward()
            for p in noise:
                p.grad.data = torch.sign(p.grad.data)
            noise_opt.step()
        mask_opt.zero_grad()
        perturb(True); rob = F.cross_entropy(m(x)[1], y)
        perturb(False); nat = F.cross_entropy(m(x)[1], y)
        loss = o["alpha"] * nat + (1 - o["alpha"]) * rob
        loss.backward(); mask_opt.step()
        with torch.no_grad():
            for p in masks:
                p.clamp_(0, 1)
        return loss.item()
    return step, n

def clp():
    m, u = WRN().eval(), 3.0
    def bounds():
        out, conv = [], None
        with torch.no_grad():
            for mod in m.modules():
                if isinstance(mod, nn.Conv2d):
                    conv = mod
                elif isinstance(mod, nn.BatchNorm2d):
                    std, gamma = mod.running_var.sqrt(), mod.weight
                    lips = torch.stack([torch.svd(conv.weight[k].reshape(conv.weight.shape[1], -1) * (gamma[k] / std[k]).abs())[1].max()
                                        for k in range(gamma.shape[0])])
                    out.append(float(lips.mean() + u * lips.std()))
        return out
    return bounds, 1

def i_bau():
    m, o, n = WRN().eval(), Z["ibau"], Z["ibauBatch"]
    hparams = list(m.parameters())
    xa, ya, xb, yb = rand(n), labels(n), rand(n), labels(n).flip(0)
    patch = torch.zeros(n, 1, 1, 1); patch[torch.randperm(n)[:max(1, int(n * o["patchedShare"]))]] = 1
    delta = (torch.rand(1, 3, 32, 32) * 0.1 - 0.05)
    def loss_inner(params):
        return torch.mean(-F.cross_entropy(m(xa + params[0])[1], ya, reduction="none")) + o["regularisation"] * torch.norm(params[0]) ** 2
    def fp_map(params):
        g = torch.autograd.grad(loss_inner(params), params, create_graph=True)
        return [w - o["fixedPointLr"] * gw for w, gw in zip(params, g)]
    def fixed_point():
        params = [delta.detach().requires_grad_(True)]
        o_loss = F.cross_entropy(m(xb + patch * params[0])[1], yb)
        g_w = torch.autograd.grad(o_loss, params, retain_graph=True)
        g_h = torch.autograd.grad(o_loss, hparams, retain_graph=True)
        w_mapped = fp_map(params)
        vs = [torch.zeros_like(w) for w in params]
        for _ in range(o["fixedPointSteps"]):
            prev = vs[0]
            vs = torch.autograd.grad(w_mapped, params, grad_outputs=vs, retain_graph=True)
            vs = [v + g for v, g in zip(vs, g_w)]
            if float(torch.norm(vs[0] - prev)) < 1e-10:
                break
        grads = torch.autograd.grad(w_mapped, hparams, grad_outputs=vs, allow_unused=True)
        grads = [g + v if g is not None else v for g, v in zip(grads, g_h)]
        for p, g in zip(hparams, grads):
            p.grad = g
        return o_loss.item()
    return fixed_point, n

def pgd_step(m, adv, x, y, eps, alpha):
    adv = adv.detach().requires_grad_(True)
    loss = F.cross_entropy(m(adv)[1], y)
    grad = torch.autograd.grad(loss, adv)[0]
    stepped = adv.detach() + alpha * grad.sign()
    return torch.clamp(x + torch.clamp(stepped - x, -eps, eps), 0, 1).detach(), loss.item()

def cl():
    m, n = WRN().eval(), Z["clBatch"]
    x, y = rand(n), labels(n)
    state = {"adv": x.clone()}
    def step():
        state["adv"], loss = pgd_step(m, state["adv"], x, y, Z["clEps"], Z["clStep"])
        return loss
    return step, n

def wanet_grid(w, h):
    k = w["k"]
    ins = torch.tensor(w["noise"], dtype=torch.float32).reshape(1, 2, k, k)
    ins = ins / torch.mean(torch.abs(ins))
    noise_grid = F.interpolate(ins, size=h, mode="bicubic", align_corners=True).permute(0, 2, 3, 1)
    a = torch.linspace(-1, 1, steps=h)
    gx, gy = torch.meshgrid(a, a, indexing="ij")
    identity_grid = torch.stack((gy, gx), 2)[None, ...]
    return torch.clamp((identity_grid + w["s"] * noise_grid / h) * w["gridRescale"], -1, 1)

def wanet_warp(images, grids):
    return F.grid_sample(images.float(), grids, align_corners=True).to(torch.uint8)

def wanet():
    n = Z["wanetImages"]
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8)
    grids = wanet_grid(Z["wanet"], 32).repeat(n, 1, 1, 1)
    return lambda: wanet_warp(images, grids), n

TWINS = {"finetune": finetune, "fine-pruning": fine_pruning, "neural-cleanse": neural_cleanse, "mcr": mcr,
         "strip": strip, "anp": anp, "clp": clp, "i-bau": i_bau, "cl": cl, "wanet": wanet}
if cfg.get("serve"):
    # Interleaved with the engine (pytorch-run.ts): a twin's name per line on stdin, one call of it timed, its
    # JSON line back; a name's first line sets its twin up, untimed (the previous twin is dropped). EOF ends.
    print(json.dumps(result), flush=True)
    ready = {}
    for line in sys.stdin:
        name = line.strip()
        try:
            if name not in ready:
                ready.clear()
                torch.manual_seed(1)
                ready[name] = TWINS[name]()
            fn, work = ready[name]
            t = time.perf_counter(); fn(); s = time.perf_counter() - t
            print(json.dumps({"seconds": s, "work": work}), flush=True)
        except Exception as e:
            print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)
    sys.exit(0)
defenses = {}
dsteps, dwarmup = cfg.get("defenseSteps", steps), cfg.get("defenseWarmup", warmup)
for name in cfg["defenses"]:
    try:
        torch.manual_seed(1)
        fn, work = TWINS[name]()
        for _ in range(dwarmup):
            fn()
        ts = timed(fn, dsteps)
        defenses[name] = {"rate": work / med(ts), "seconds": med(ts), "stepMs": [t * 1000 for t in ts]}
    except Exception as e:
        defenses[name] = {"error": f"{type(e).__name__}: {e}"}
if cfg["defenses"]:
    result["defenses"] = defenses
print(json.dumps(result))
`;
