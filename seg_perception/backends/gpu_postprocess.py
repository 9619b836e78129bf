"""Post-processing on the device the network ran on (torch), so only class ids cross PCIe.

The torch twin of ``Segmenter.postprocess`` for logits (crop, bilinear resize, arg-max,
softmax confidence x 255). torch is imported inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from seg_perception.errors import ModelError

if TYPE_CHECKING:
    import torch


def crop_hw(out_hw: tuple[int, int], net_hw: tuple[int, int], content_hw: tuple[int, int]) -> tuple[int, int]:
    """Rows and columns of an output of size ``out_hw`` that hold image content.

    The network input is ``net_hw`` (H, W) pixels of which the top-left ``content_hw``
    are the (resized) image and the rest padding. An output at a reduced resolution keeps
    the same fraction; the rule is the same as ``Segmenter._crop``.
    """
    oh, ow = int(out_hw[0]), int(out_hw[1])
    ch = max(1, round(int(content_hw[0]) * oh / int(net_hw[0])))
    cw = max(1, round(int(content_hw[1]) * ow / int(net_hw[1])))
    return min(ch, oh), min(cw, ow)


def is_logits_output(out: torch.Tensor) -> bool:
    """True for a float (1, K, h, w) or (K, h, w) output with K > 1 (class scores, not ids)."""
    return (
        bool(out.is_floating_point())
        and out.dim() in (3, 4)
        and out.shape[-3] > 1
        and (out.dim() == 3 or out.shape[0] == 1)
    )


def accepts_logits(out: torch.Tensor, num_classes: int | None) -> bool:
    """``is_logits_output(out)``; raises ModelError when its class count is not ``num_classes`` (None: any)."""
    if not is_logits_output(out):
        return False
    if num_classes is not None and out.shape[-3] != num_classes:
        raise ModelError(f"model produced {out.shape[-3]} classes; metadata lists {num_classes}")
    return True


def logits_to_labels(
    logits: torch.Tensor,
    net_hw: tuple[int, int],
    content_hw: tuple[int, int],
    image_hw: tuple[int, int],
    want_confidence: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Class ids (and confidence) at the image's resolution from network logits.

    Args:
        logits: (1, K, h, w) or (K, h, w) float32/float16 scores on any device, for a
            network input of ``net_hw`` pixels.
        net_hw: (H, W) of the network input.
        content_hw: (h, w) top-left region of the network input holding the image.
        image_hw: (H, W) of the original image: the result's size.
        want_confidence: also return the softmax probability of the arg-max class.

    Returns:
        (labels, confidence): ``image_hw`` uint8 tensors on the logits' device;
        confidence is round(255 * p_max), or None when not requested. Ties pick the
        lowest class id, like the numpy implementation.
    """
    import torch
    import torch.nn.functional as F

    if logits.dim() == 4:
        if logits.shape[0] != 1:
            raise ModelError(f"expected logits of shape (1, K, h, w), got {tuple(logits.shape)}")
        logits = logits[0]
    if logits.dim() != 3:
        raise ModelError(f"expected logits of shape (K, h, w), got {tuple(logits.shape)}")
    k = int(logits.shape[0])
    if k > 255:
        raise ModelError(f"{k} classes do not fit a mono8 label image (255 = unknown)")
    ch, cw = crop_hw(tuple(logits.shape[-2:]), net_hw, content_hw)
    # float32 before resizing and softmax: fp16 logits would lose the small margins
    # that decide near-tied pixels and round exp() sums.
    x = logits[:, :ch, :cw].float()
    h, w = int(image_hw[0]), int(image_hw[1])
    if (ch, cw) != (h, w):
        # align_corners=False, no antialias == cv2.INTER_LINEAR's half-pixel sampling.
        x = F.interpolate(x[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    best = x.amax(dim=0)
    labels = x.argmax(dim=0).to(torch.uint8)
    if not want_confidence:
        return labels, None
    total = torch.exp(x - best).sum(dim=0)
    conf = torch.round(255.0 / total).clamp_(0, 255).to(torch.uint8)
    return labels, conf


def label_ids_to_image(
    ids: torch.Tensor,
    net_hw: tuple[int, int],
    content_hw: tuple[int, int],
    image_hw: tuple[int, int],
    num_classes: int,
    unknown: int = 255,
) -> torch.Tensor:
    """Class-id output (1, h, w), (h, w) or (1, 1, h, w) -> ``image_hw`` uint8 ids.

    Ids outside 0..num_classes-1 become ``unknown``; resizing is nearest neighbour
    (floor sampling, the same as cv2.INTER_NEAREST).
    """
    import torch
    import torch.nn.functional as F

    lab = ids.reshape(ids.shape[-2:])
    ch, cw = crop_hw(tuple(lab.shape), net_hw, content_hw)
    lab = lab[:ch, :cw].to(torch.int64)
    lab = torch.where((lab >= 0) & (lab < num_classes), lab, torch.full_like(lab, unknown))
    h, w = int(image_hw[0]), int(image_hw[1])
    if (ch, cw) != (h, w):
        lab = F.interpolate(lab[None, None].float(), size=(h, w), mode="nearest")[0, 0].to(torch.int64)
    return lab.to(torch.uint8)
