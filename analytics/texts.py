"""One-line plain explanations of findings and measures, in Japanese and English.

Templates take the finding's metrics (and channel) as format fields, so the
text always says what the numbers say.
"""
from __future__ import annotations

TEMPLATES: dict[str, dict[str, str]] = {
    "standby": {
        "en": "{channel} draws {mean_kw:.2f} kW outside production ({hours:.0f} h, {share_pct:.0f}% of its energy); "
              "switching it off saves {energy_kwh:,.0f} kWh over the period.",
        "ja": "{channel} は非稼働時間に {mean_kw:.2f} kW の待機電力（{hours:.0f} 時間、使用量の {share_pct:.0f}%）。"
              "停止すれば期間中 {energy_kwh:,.0f} kWh の削減。",
    },
    "standby_total": {
        "en": "The site ({channel}) draws {mean_kw:.2f} kW outside production ({hours:.0f} h, {share_pct:.0f}% of "
              "its energy): {energy_kwh:,.0f} kWh of base load to track down on the breakers.",
        "ja": "工場全体（{channel}）の非稼働時の電力は {mean_kw:.2f} kW（{hours:.0f} 時間、使用量の {share_pct:.0f}%）。"
              "{energy_kwh:,.0f} kWh のベースロードを分岐ごとに確認してください。",
    },
    "air_leak": {
        "en": "System {system} leaks about {leak_flow_m3min:.2f} m3/min ({leak_share_pct:.0f}% of production air, "
              "{method_en}); about {annual_energy_kwh:,.0f} kWh a year.",
        "ja": "系統 {system} のエア漏れは約 {leak_flow_m3min:.2f} m3/min（生産時流量の {leak_share_pct:.0f}%、{method_ja}）。"
              "年間約 {annual_energy_kwh:,.0f} kWh。",
    },
    "air_leak_growth": {
        "en": "Leak flow of system {system} grows {growth_pct:.0f}% over {weeks} weeks "
              "({slope_m3min_per_week:+.3f} m3/min per week): inspect for new leaks.",
        "ja": "系統 {system} のエア漏れが {weeks} 週間で {growth_pct:.0f}% 増加（週 {slope_m3min_per_week:+.3f} m3/min）。"
              "新たな漏れを点検してください。",
    },
    "baseline_gap": {
        "en": "{channel} on {date} ({day_type_en}): {excess_kwh:,.0f} kWh above its usual {day_type_en} profile over "
              "{hours} h ({pattern_en}).",
        "ja": "{channel} は {date}（{day_type_ja}）に通常より {excess_kwh:,.0f} kWh 多い（{hours} 時間、{pattern_ja}）。",
    },
    "baseline_gap_episode": {
        "en": "{channel} from {date} to {last_date} ({days} days, {day_type_en}): {excess_kwh:,.0f} kWh above its usual "
              "profile over {hours} h ({pattern_en}).",
        "ja": "{channel} は {date}〜{last_date}（{days} 日間、{day_type_ja}）に通常より {excess_kwh:,.0f} kWh 多い"
              "（{hours} 時間、{pattern_ja}）。",
    },
    "base_load": {
        "en": "{channel} runs around the clock at {base_kw:.2f} kW ({reason_en}): {energy_kwh:,.0f} kWh of base load "
              "over {hours:,.0f} h, to review (right-size, set points), not to switch off.",
        "ja": "{channel} は常時 {base_kw:.2f} kW で運転（{reason_ja}）。期間中 {energy_kwh:,.0f} kWh のベースロード："
              "停止ではなく、容量・設定の見直し対象。",
    },
    "compressor_profile": {
        "en": "Compressor {channel}: loaded {load_share_pct:.0f}%, unloaded {unload_share_pct:.0f}%, off "
              "{off_share_pct:.0f}% of the time; unloaded running costs {unload_energy_kwh:,.0f} kWh.",
        "ja": "コンプレッサ {channel}: 負荷 {load_share_pct:.0f}%、無負荷 {unload_share_pct:.0f}%、停止 "
              "{off_share_pct:.0f}%。無負荷運転で {unload_energy_kwh:,.0f} kWh。",
    },
}

PATTERNS = {
    "left_on": ("equipment left on", "設備の消し忘れ"),
    "holiday_run": ("ran like a workday on a day off", "休日に平日並みの運転"),
    "night_high": ("night load stayed high", "夜間の負荷が下がらない"),
    "high_day": ("higher than usual", "通常より高い"),
}
DAY_TYPES_JA = {"workday": "平日", "saturday": "土曜", "sunday_holiday": "日曜・祝日", "company_holiday": "会社休日"}
DAY_TYPES_EN = {"workday": "workday", "saturday": "Saturday", "sunday_holiday": "Sunday/holiday",
                "company_holiday": "company holiday"}


def day_type_words(day_type: str) -> tuple[str, str]:
    """(English, Japanese) words for a day type, or for an episode's several types
    joined by `+` (`saturday+workday`): people read words, not ids."""
    parts = [p for p in str(day_type).split("+") if p]
    return (", ".join(DAY_TYPES_EN.get(p, p) for p in parts),
            "・".join(DAY_TYPES_JA.get(p, p) for p in parts))
BASE_LOAD_REASONS = {
    "configured": ("always_on in the site config", "設定で常時運転"),
    "equipment_kind": ("an always-on kind of equipment", "常時運転の設備種別"),
    "does_not_follow_production": ("its off-hours load is at its production level", "非稼働時も稼働時並みの負荷"),
}
METHODS = {"flow_meter": ("flow meter outside production", "非稼働時の流量計"),
           "leak_load": ("leak load method", "ロード・アンロード法")}

MEASURE_NAMES = {
    "standby_off": ("Switch off standby loads outside production", "非稼働時の待機電力カット"),
    "review_base_load": ("Review always-on base loads (set points, right-sizing)", "常時運転負荷の見直し"),
    "fix_baseline_gaps": ("Stop equipment left on / holiday runs", "休日・夜間の消し忘れ防止"),
    "leak_repair": ("Repair compressed-air leaks", "エア漏れ修理"),
    "compressor_night_stop": ("Stop compressors outside production", "非稼働時のコンプレッサ停止"),
    "pressure_setpoint": ("Lower compressor pressure 0.7 -> 0.6 MPa", "吐出圧力の低減 0.7→0.6 MPa"),
    "vsd_compressor": ("Inverter (VSD) compressor", "インバータ式コンプレッサへの更新"),
    "pulse_blow": ("Pulsed air blow instead of continuous", "エアブローのパルス化"),
    "peak_cut": ("Peak cut / shift: move loads out of the highest half hours", "ピークカット・シフト（デマンド抑制）"),
}


def explain(kind: str, channel: str, metrics: dict, energy_kwh: float, lang: str = "en", template: str | None = None,
            **extra) -> str:
    """The one-line explanation of a finding in `lang` ("en" or "ja"); `template`
    picks a variant (e.g. "standby_total" for the incomer)."""
    fields = {"channel": channel, "energy_kwh": energy_kwh, **metrics, **extra}
    for k in ("share", "leak_share", "load_share", "unload_share", "off_share"):
        if k in fields and fields[k] is not None:
            fields[k + "_pct"] = 100.0 * fields[k]
    if "share_of_channel_energy" in fields:
        fields["share_pct"] = 100.0 * fields["share_of_channel_energy"]
    if "pattern" in fields:
        fields["pattern_en"], fields["pattern_ja"] = PATTERNS.get(fields["pattern"], (fields["pattern"],) * 2)
    if "day_type" in fields:
        fields["day_type_en"], fields["day_type_ja"] = day_type_words(fields["day_type"])
    if "reason" in fields:
        fields["reason_en"], fields["reason_ja"] = BASE_LOAD_REASONS.get(fields["reason"], (fields["reason"],) * 2)
    if "method" in fields:
        fields["method_en"], fields["method_ja"] = METHODS.get(fields["method"], (fields["method"],) * 2)
    if "growth_relative" in fields:
        fields["growth_pct"] = 100.0 * fields["growth_relative"]
    fields.setdefault("leak_share_pct", 0.0)
    fields.setdefault("annual_energy_kwh", 0.0)
    try:
        return TEMPLATES[template or kind][lang].format(**fields)
    except (KeyError, ValueError, TypeError):
        return f"{kind} on {channel}: {energy_kwh:,.0f} kWh"
