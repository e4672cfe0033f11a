# Clip sampling for tiny configs: 8 distinct frames at stride 4 around the key frame, 64 px.
data = dict(
    num_frames=8,
    frame_stride=4,
    img_size=64,
    keyframe_size=64,
    num_dets=16,
    mean=(0.48145466, 0.4578275, 0.40821073),  # CLIP's statistics, as the released loader uses
    std=(0.26862954, 0.26130258, 0.27577711),
)
