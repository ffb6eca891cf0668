"""Labels of the report, the Excel export and the dashboard in Japanese and
English (`[site] language`)."""
from __future__ import annotations

import calendar

LABELS: dict[str, dict[str, str]] = {
    "report_title": {"ja": "エネルギー見える化レポート", "en": "Energy report"},
    "site": {"ja": "事業所", "en": "Site"},
    "period": {"ja": "対象期間", "en": "Period"},
    "provenance": {"ja": "再現性情報", "en": "Provenance"},
    "input_sha256": {"ja": "入力ファイル SHA-256", "en": "Input file SHA-256"},
    "imported_from": {"ja": "取込元ファイル SHA-256", "en": "Imported from (SHA-256)"},
    "import_mapping": {"ja": "取込マッピング SHA-256", "en": "Import mapping (SHA-256)"},
    "bills_sha256": {"ja": "請求書ファイル SHA-256", "en": "Bills file (SHA-256)"},
    "input_file": {"ja": "入力ファイル", "en": "Input file"},
    "factor_set": {"ja": "排出係数セット", "en": "Emission factor set"},
    "software": {"ja": "ソフトウェア版", "en": "Software version"},
    "calendar": {"ja": "使用カレンダー", "en": "Calendar used"},
    "co2_monthly": {"ja": "月別CO2排出量（エネルギー種別）", "en": "Monthly CO2 by energy type"},
    "co2_share": {"ja": "CO2排出量の構成", "en": "CO2 composition"},
    "co2_sheet": {"ja": "月別CO2・エネルギー集計表", "en": "Monthly CO2 and energy sheet"},
    "location_based": {"ja": "ロケーション基準", "en": "Location-based"},
    "market_based": {"ja": "マーケット基準", "en": "Market-based"},
    "profile": {"ja": "日負荷曲線（稼働日と休日）", "en": "Daily load profile (workdays and holidays)"},
    "demand": {"ja": "デマンド（30分平均電力）と契約電力", "en": "Demand (30-minute mean power) and contract power"},
    "demand_daily_max": {"ja": "日最大デマンド", "en": "Daily maximum demand"},
    "demand_monthly": {"ja": "月間最大デマンド", "en": "Monthly maximum demand"},
    "demand_peaks": {"ja": "デマンド上位10（その時に動いていた設備）", "en": "Top 10 peaks (what ran)"},
    "max_kw": {"ja": "最大 (kW)", "en": "Max (kW)"},
    "at": {"ja": "発生時刻", "en": "At"},
    "contract_kw": {"ja": "契約電力 (kW)", "en": "Contract power (kW)"},
    "contract_kw_12m": {"ja": "契約電力 (直近12か月, kW)", "en": "Contract power (12 months, kW)"},
    "target_kw": {"ja": "目標電力 (kW)", "en": "Target (kW)"},
    "what_ran": {"ja": "動いていた設備（電力量の割合）", "en": "What ran (share of the energy)"},
    "periods_over_target": {"ja": "目標超過の時限数", "en": "Periods over target"},
    "bill": {"ja": "電気料金の試算", "en": "Electricity bill estimate"},
    "basic_charge": {"ja": "基本料金", "en": "Basic charge"},
    "energy_charge": {"ja": "電力量料金", "en": "Energy charge"},
    "fuel_adjustment": {"ja": "燃料費調整額", "en": "Fuel-cost adjustment"},
    "renewable_levy": {"ja": "再エネ賦課金", "en": "Renewable levy"},
    "consumption_tax": {"ja": "消費税", "en": "Consumption tax"},
    "power_factor_pct": {"ja": "力率 (%)", "en": "Power factor (%)"},
    "bill_total": {"ja": "合計 (円)", "en": "Total (yen)"},
    "findings": {"ja": "検出されたムダ", "en": "Findings"},
    "plan": {"ja": "省エネ対策（削減計画）", "en": "Savings plan"},
    "measure": {"ja": "対策", "en": "Measure"},
    "saving_jpy_year": {"ja": "削減額 (円/年)", "en": "Saving (yen/year)"},
    "saving_kwh_year": {"ja": "削減量 (kWh/年)", "en": "Saving (kWh/year)"},
    "saving_co2_t_year": {"ja": "CO2削減 (t/年)", "en": "CO2 saving (t/year)"},
    "co2_share_pct": {"ja": "削減寄与率 (%)", "en": "Share of site CO2 (%)"},
    "investment_jpy": {"ja": "投資額 (円)", "en": "Investment (yen)"},
    "payback_years": {"ja": "投資回収年数", "en": "Payback (years)"},
    "confidence": {"ja": "確度", "en": "Confidence"},
    "saving_range": {"ja": "削減量の幅 (kWh/年)", "en": "Range (kWh/year)"},
    "plan_total": {"ja": "合計", "en": "Total"},
    "share_of_site": {"ja": "工場全体の使用量に対し", "en": "of the site's energy"},
    "folded": {"ja": "件の小さな検出結果はまとめて表示せず", "en": "smaller findings are not listed"},
    "days_analysed": {"ja": "分析日数", "en": "days analysed"},
    "kind": {"ja": "種類", "en": "Kind"},
    "channel": {"ja": "計測点", "en": "Channel"},
    "energy_kwh": {"ja": "電力量 (kWh)", "en": "Energy (kWh)"},
    "cost_jpy": {"ja": "金額 (円)", "en": "Cost (yen)"},
    "co2_t": {"ja": "CO2 (t)", "en": "CO2 (t)"},
    "explanation": {"ja": "説明", "en": "Explanation"},
    "start": {"ja": "開始", "en": "Start"},
    "end": {"ja": "終了", "en": "End"},
    "month": {"ja": "月", "en": "Month"},
    "total": {"ja": "合計", "en": "Total"},
    "share": {"ja": "構成比", "en": "Share"},
    "energy": {"ja": "エネルギー", "en": "Energy"},
    "none": {"ja": "なし", "en": "none"},
    "workday": {"ja": "稼働日", "en": "Workday"},
    "saturday": {"ja": "土曜", "en": "Saturday"},
    "sunday_holiday": {"ja": "日曜・祝日", "en": "Sunday/holiday"},
    "company_holiday": {"ja": "会社休日", "en": "Company holiday"},
    "hour": {"ja": "時刻", "en": "Hour"},
    "power_kw": {"ja": "電力 (kW)", "en": "Power (kW)"},
    "flow_m3min": {"ja": "流量 (m³/min)", "en": "Flow (m³/min)"},
    "t_co2": {"ja": "t-CO2", "en": "t-CO2"},
    "unverified": {"ja": "未検証の係数を含む", "en": "includes unverified factors"},
    "production": {"ja": "稼働時間", "en": "Production hours"},
    "non_production": {"ja": "非稼働時間", "en": "Outside production"},
    "sum_of_breakers": {"ja": "受電の計測なし: 分岐回路の合計", "en": "No incomer metered: sum of the breakers"},
    "standby_level": {"ja": "待機電力レベル", "en": "Standby level"},
    "no_data": {"ja": "データなし", "en": "no data"},
    "scope1": {"ja": "Scope 1（燃料）", "en": "Scope 1 (fuels)"},
    "scope2": {"ja": "Scope 2（電気）", "en": "Scope 2 (electricity)"},
    "summary": {"ja": "概要", "en": "Summary"},
    "findings_total": {"ja": "ムダの合計", "en": "Waste found"},
    "per_year": {"ja": "年換算", "en": "per year"},
    "findings_sheet": {"ja": "検出結果", "en": "Findings"},
    "plan_sheet": {"ja": "削減計画", "en": "Savings plan"},
    "co2_sheet_name": {"ja": "月別CO2", "en": "Monthly CO2"},
    "metrics": {"ja": "指標", "en": "Metrics"},
    "dashboard": {"ja": "見える化ダッシュボード", "en": "mieruka dashboard"},
    "fy_total": {"ja": "t-CO2", "en": "t-CO2"},
    "covers_only": {"ja": "{first} – {last} のデータのみ（{days} 日間、{months} か月中 {n} か月にデータあり）。年度全体の値ではありません",
                    "en": "covers {first} – {last} only ({days} days; data in {n} of {months} months), "
                          "not the whole fiscal year"},
    "covers_whole_year": {"ja": "年度全体（12 か月）", "en": "the whole fiscal year (12 months)"},
    "no_data_month": {"ja": "—: データなし", "en": "—: no data"},
}

KINDS: dict[str, dict[str, str]] = {
    "standby": {"ja": "待機電力", "en": "Standby power"},
    "air_leak": {"ja": "エア漏れ", "en": "Air leak"},
    "air_leak_growth": {"ja": "エア漏れの増加", "en": "Air leak growth"},
    "baseline_gap": {"ja": "ベースライン超過", "en": "Baseline gap"},
    "compressor_profile": {"ja": "コンプレッサー運転", "en": "Compressor profile"},
    "base_load": {"ja": "常時運転負荷（要見直し）", "en": "Base load (to review)"},
}

ENERGIES: dict[str, dict[str, str]] = {
    "electricity": {"ja": "電気", "en": "Electricity"},
    "city_gas": {"ja": "都市ガス", "en": "City gas"},
    "lpg": {"ja": "LPG", "en": "LPG"},
    "lng": {"ja": "LNG", "en": "LNG"},
    "kerosene": {"ja": "灯油", "en": "Kerosene"},
    "diesel": {"ja": "軽油", "en": "Diesel"},
    "gasoline": {"ja": "ガソリン", "en": "Gasoline"},
    "a_heavy_oil": {"ja": "A重油", "en": "A heavy oil"},
    "bc_heavy_oil": {"ja": "B・C重油", "en": "B/C heavy oil"},
    "steam": {"ja": "蒸気", "en": "Steam"},
}


class T:
    """`t = T("ja"); t("plan"); t.kind("standby"); t.month("2025-04")`."""

    def __init__(self, language: str):
        self.lang = language if language in ("ja", "en") else "en"

    def __call__(self, key: str) -> str:
        return LABELS.get(key, {}).get(self.lang, key)

    def kind(self, kind: str) -> str:
        return KINDS.get(kind, {}).get(self.lang, kind)

    def energy(self, energy: str) -> str:
        return ENERGIES.get(energy, {}).get(self.lang, energy)

    def month(self, yyyy_mm: str) -> str:
        """'2025-04' -> '4月' (ja) or 'Apr 2025' (en)."""
        y, m = yyyy_mm.split("-")[:2]
        if self.lang == "ja":
            return f"{int(m)}月"
        return f"{calendar.month_abbr[int(m)]} {y}"
