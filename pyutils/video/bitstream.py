"""What a packet's bytes say of how its frame is referred to, for `pyutils.video.frame_plan`:
whether no other frame refers to it (disposable: the decoder can be spared it when it is not
kept), and whether a keyframe starts afresh (fresh: no frame from it on refers to one before it,
so the packets after the last kept frame before it can be spared too).

Only headers are read (a few bytes per packet; no pixel is decoded), for the codecs that say it
there: H.264 and HEVC in their NAL unit headers, VP9 and AV1 in their frame headers. VP9 says
which frames are disposable too (refresh_frame_flags), but libvpx leaves no frame unreferenced,
so that is not read. Anything unexpected reads as "may be referred to" and "not fresh": a wrong
yes would change the frames written, a wrong no only costs decoding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# AV1 OBU types (AV1 spec 6.2.2) and frame types (6.8.2).
OBU_SEQUENCE_HEADER, OBU_FRAME_HEADER, OBU_FRAME = 1, 3, 6
KEY_FRAME, INTRA_ONLY_FRAME, SWITCH_FRAME = 0, 2, 3
SELECT = 2  # seq_force_screen_content_tools / seq_force_integer_mv: chosen per frame
# A packet's bytes: a memoryview of PyAV's packet (no copy), or extradata.
Buffer = bytes | memoryview
# More than a frame header holds up to refresh_frame_flags (a few dozen bits).
HEADER_BYTES = 64


# A test of one packet's bytes, or None where the stream's headers are not read.
Test = Callable[[Buffer], bool] | None


def packet_tests(stream: Any) -> tuple[Test, Test]:
    """Two tests of a packet's bytes, each None for a codec whose headers are not read, or whose
    extradata is not the MP4/Matroska form (avcC, hvcC, av1C) the packets are read by:

    - disposable (every packet of the stream in turn, decode order): no other frame refers to
      its frame;
    - fresh (keyframe packets): decoding from it needs no packet before it and no packet after
      it refers to a frame before it: an H.264 IDR picture (ITU-T H.264, 8.2.5.1: every
      reference is marked unused), an HEVC IDR picture (H.265, 8.3.2; not a CRA or BLA, whose
      leading pictures may refer back), a VP9 key frame (VP9 spec 7.2: it refreshes every
      reference slot), an AV1 shown key frame (AV1 spec 7.20: refresh_frame_flags is
      allFrames).
    """
    codec = stream.codec_context.codec.canonical_name
    extra = bytes(stream.codec_context.extradata or b"")
    if codec == "vp9":
        return None, _vp9_key_frame
    if codec == "av1" and len(extra) > 4 and extra[0] == 0x81:
        return _av1_test(extra[4:], _av1_refreshes_none), _av1_test(extra[4:], _av1_shown_key)
    if codec == "h264" and len(extra) > 4 and extra[0] == 1:
        length_size = (extra[4] & 3) + 1
        return _nal_test(length_size, _h264_disposable), _nal_test(length_size, _h264_idr)
    if codec == "hevc" and len(extra) > 22 and extra[0] == 1:
        length_size, layers = (extra[21] & 3) + 1, (extra[21] >> 3) & 7
        disposable = None
        if layers:  # numTemporalLayers known: the top one's non-reference pictures
            disposable = _nal_test(length_size, lambda header: _hevc_disposable(header, layers - 1))
        return disposable, _nal_test(length_size, _hevc_idr)
    return None, None


def _h264_idr(header: Buffer) -> bool | None:
    """H.264, 7.4.1.2.4: an IDR picture's slices are NAL units of type 5, its other pictures'
    of types 1-4. None: not a slice."""
    kind = header[0] & 31
    return kind == 5 if 1 <= kind <= 5 else None


def _hevc_idr(header: Buffer) -> bool | None:
    """H.265, 7.4.2.2: IDR_W_RADL (19) and IDR_N_LP (20); a RADL picture after an IDR refers only
    to it and what follows it. None: not a slice (VCL types are 0-31)."""
    kind = header[0] >> 1 & 63
    return kind in (19, 20) if kind <= 31 else None


def _vp9_key_frame(data: Buffer) -> bool:
    """VP9 spec 6.2, uncompressed_header, from the top bit of the first byte: frame_marker (2
    bits, 0b10), profile_low_bit, profile_high_bit, a reserved bit in profile 3,
    show_existing_frame (a frame shown again decodes nothing), frame_type (0: a key frame). A
    superframe's first frame is at the start of its packet."""
    if not data or data[0] >> 6 != 2:
        return False
    profile = (data[0] >> 5 & 1) | (data[0] >> 3 & 2)
    show_existing = 2 if profile == 3 else 3  # its bit, counted from the lowest
    return not data[0] >> show_existing & 1 and not data[0] >> (show_existing - 1) & 1


def _h264_disposable(header: Buffer) -> bool | None:
    """ITU-T H.264, 7.4.1: a slice (types 1-5) whose nal_ref_idc is 0 is of a picture not used
    for reference, and then every slice of it says 0. None: not a slice."""
    return header[0] >> 5 == 0 if 1 <= header[0] & 31 <= 5 else None


def _hevc_disposable(header: Buffer, top_layer: int) -> bool | None:
    """ITU-T H.265, 7.4.2.2: an even VCL type up to 14 (TRAIL_N, TSA_N, STSA_N, RADL_N, RASL_N,
    RSV_VCL_N10/12/14) is a sub-layer non-reference picture, which only pictures of higher
    temporal sub-layers may refer to: none when it is in the highest (hvcC's
    numTemporalLayers). None: not a slice."""
    kind = header[0] >> 1 & 63
    if kind > 31 or len(header) < 2:
        return None
    return kind <= 14 and kind % 2 == 0 and (header[1] & 7) - 1 == top_layer


def _nal_test(
    length_size: int, slice_disposable: Callable[[Buffer], bool | None]
) -> Callable[[Buffer], bool]:
    """Disposable when the packet (length-prefixed NAL units) has slices and all say so."""

    def disposable(data: Buffer) -> bool:
        offset, slices = 0, False
        while offset + length_size < len(data):
            start = offset + length_size
            verdict = slice_disposable(data[start : start + 2])
            if verdict is False:
                return False
            slices = slices or verdict is True
            offset = start + int.from_bytes(data[offset:start], "big")
        return slices

    return disposable


class _Bits:
    """An MSB-first bit reader: the AV1 spec's f(n), leb128() and uvlc()."""

    def __init__(self, data: Buffer) -> None:
        self.value, self.left = int.from_bytes(data, "big"), len(data) * 8

    def f(self, count: int) -> int:
        if count > self.left:
            raise ValueError("header ends early")
        self.left -= count
        return (self.value >> self.left) & ((1 << count) - 1)

    def uvlc(self) -> int:
        zeros = 0
        while not self.f(1):
            zeros += 1
            if zeros >= 32:
                return (1 << 32) - 1
        return self.f(zeros) + (1 << zeros) - 1


def _obus(data: Buffer) -> list[tuple[int, int, int, Buffer]]:
    """(type, temporal_id, spatial_id, payload) of each OBU in a packet (AV1 spec 5.3)."""
    found, offset = [], 0
    while offset < len(data):
        header = data[offset]
        kind, extension, has_size = header >> 3 & 15, header >> 2 & 1, header >> 1 & 1
        temporal = spatial = 0
        offset += 1
        if extension:
            temporal, spatial = data[offset] >> 5, data[offset] >> 3 & 3
            offset += 1
        size = len(data) - offset
        if has_size:
            size = shift = 0
            while True:
                byte = data[offset]
                offset += 1
                size |= (byte & 127) << shift
                shift += 7
                if not byte & 128:
                    break
        found.append((kind, temporal, spatial, data[offset : offset + size]))
        offset += size
    return found


def _av1_sequence(payload: Buffer) -> dict[str, Any]:
    """What frame headers need of a sequence header OBU (AV1 spec 5.5)."""
    bits, seq = _Bits(payload), {}
    bits.f(3)  # seq_profile
    bits.f(1)  # still_picture
    seq["reduced"] = reduced = bits.f(1)
    seq["decoder_model"] = seq["equal_interval"] = 0
    seq["ops"] = [(0, False)]  # (operating_point_idc, decoder_model_present_for_this_op)
    if reduced:
        bits.f(5)  # seq_level_idx[0]
    else:
        if bits.f(1):  # timing_info_present_flag
            bits.f(32), bits.f(32)  # num_units_in_display_tick, time_scale
            seq["equal_interval"] = bits.f(1)
            if seq["equal_interval"]:
                bits.uvlc()  # num_ticks_per_picture_minus_1
            seq["decoder_model"] = bits.f(1)
            if seq["decoder_model"]:
                seq["buffer_delay_bits"] = bits.f(5) + 1
                bits.f(32)  # num_units_in_decoding_tick
                seq["removal_time_bits"] = bits.f(5) + 1
                seq["presentation_time_bits"] = bits.f(5) + 1
        display_delay = bits.f(1)
        seq["ops"] = []
        for _ in range(bits.f(5) + 1):
            idc = bits.f(12)
            if bits.f(5) > 7:  # seq_level_idx
                bits.f(1)  # seq_tier
            model = False
            if seq["decoder_model"]:
                model = bool(bits.f(1))
                if model:
                    bits.f(seq["buffer_delay_bits"]), bits.f(seq["buffer_delay_bits"]), bits.f(1)
            if display_delay and bits.f(1):
                bits.f(4)  # initial_display_delay_minus_1
            seq["ops"].append((idc, model))
    width_bits, height_bits = bits.f(4) + 1, bits.f(4) + 1
    bits.f(width_bits), bits.f(height_bits)
    seq["frame_id_bits"] = 0
    if not reduced and bits.f(1):  # frame_id_numbers_present_flag
        delta, additional = bits.f(4) + 2, bits.f(3) + 1
        seq["frame_id_bits"] = delta + additional
    bits.f(3)  # use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
    seq["screen_content"], seq["integer_mv"], seq["order_hint_bits"] = SELECT, SELECT, 0
    if not reduced:
        bits.f(4)  # interintra, masked compound, warped motion, dual filter
        order_hint = bits.f(1)
        if order_hint:
            bits.f(2)  # enable_jnt_comp, enable_ref_frame_mvs
        seq["screen_content"] = SELECT if bits.f(1) else bits.f(1)
        if seq["screen_content"] > 0:
            seq["integer_mv"] = SELECT if bits.f(1) else bits.f(1)
        if order_hint:
            seq["order_hint_bits"] = bits.f(3) + 1
    return seq


def _av1_refreshes(payload: Buffer, seq: dict[str, Any], temporal: int, spatial: int) -> bool:
    """Whether a frame header (AV1 spec 5.9.2, read up to refresh_frame_flags) stores its frame
    for others to refer to. A frame shown again (show_existing_frame) decodes nothing new but
    may reset the references (a key frame): counted as referred to."""
    bits = _Bits(payload)
    if seq["reduced"]:
        return True  # every frame a key frame
    if bits.f(1):  # show_existing_frame
        return True
    frame_type, show_frame = bits.f(2), bits.f(1)
    if show_frame and seq["decoder_model"] and not seq["equal_interval"]:
        bits.f(seq["presentation_time_bits"])  # temporal_point_info
    if not show_frame:
        bits.f(1)  # showable_frame
    if frame_type == SWITCH_FRAME or (frame_type == KEY_FRAME and show_frame):
        return True  # refresh_frame_flags = allFrames
    error_resilient = bits.f(1)
    bits.f(1)  # disable_cdf_update
    screen_content = bits.f(1) if seq["screen_content"] == SELECT else seq["screen_content"]
    if screen_content and seq["integer_mv"] == SELECT:
        bits.f(1)  # force_integer_mv
    bits.f(seq["frame_id_bits"])  # current_frame_id
    bits.f(1)  # frame_size_override_flag (not a switch frame, not reduced)
    bits.f(seq["order_hint_bits"])  # order_hint
    if frame_type not in (KEY_FRAME, INTRA_ONLY_FRAME) and not error_resilient:
        bits.f(3)  # primary_ref_frame
    if seq["decoder_model"] and bits.f(1):  # buffer_removal_time_present_flag
        for idc, model in seq["ops"]:
            in_layers = idc >> temporal & 1 and idc >> (spatial + 8) & 1
            if model and (idc == 0 or in_layers):
                bits.f(seq["removal_time_bits"])
    return bits.f(8) != 0  # refresh_frame_flags


def _av1_test(
    config_obus: Buffer, verdict: Callable[[list[tuple[Buffer, int, int]], dict[str, Any]], bool]
) -> Callable[[Buffer], bool]:
    """A test of a packet (a temporal unit): `verdict` on its frame headers (each with its
    temporal and spatial id, in order) and the sequence header they are read by, from av1C's
    configOBUs or the latest one in the packets; False for a packet that cannot be read."""
    state: dict[str, Any] = {}

    def test(data: Buffer) -> bool:
        try:
            headers = []
            for kind, temporal, spatial, payload in _obus(data):
                if kind == OBU_SEQUENCE_HEADER:
                    state["seq"] = _av1_sequence(payload)
                elif kind in (OBU_FRAME_HEADER, OBU_FRAME):
                    # the header is the payload's first bytes: tile data follows in an OBU_FRAME
                    headers.append((payload[:HEADER_BYTES], temporal, spatial))
            return "seq" in state and bool(headers) and verdict(headers, state["seq"])
        except (ValueError, IndexError):
            return False

    test(config_obus)  # reads the sequence header
    return test


def _av1_refreshes_none(headers: list[tuple[Buffer, int, int]], seq: dict[str, Any]) -> bool:
    """Disposable: no frame of the temporal unit stores itself for others to refer to."""
    return not any(
        _av1_refreshes(header, seq, temporal, spatial) for header, temporal, spatial in headers
    )


def _av1_shown_key(headers: list[tuple[Buffer, int, int]], seq: dict[str, Any]) -> bool:
    """Fresh: the temporal unit's first frame is a key frame, shown (AV1 spec 5.9.2: a
    reduced still-picture header makes every frame one). A key frame kept hidden and shown
    later (show_existing_frame) may have frames before it refer back: not fresh."""
    if seq["reduced"]:
        return True
    bits = _Bits(headers[0][0])
    return not bits.f(1) and bits.f(2) == KEY_FRAME and bool(bits.f(1))
