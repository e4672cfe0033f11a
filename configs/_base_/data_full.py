# Clip sampling for full configs: 8 frames at 224 px (paper Sec. 5.1), 100 DETR queries.
data = dict(
    num_frames=8,
    frame_stride=8,
    img_size=224,
    keyframe_size=224,
    num_dets=100,
    mean=(0.48145466, 0.4578275, 0.40821073),
    std=(0.26862954, 0.26130258, 0.27577711),
)
