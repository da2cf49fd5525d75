/// The dashboard served at `GET /`: one self-contained page (no CDN, no external assets), made of
/// `dashboard.html`, `dashboard.css` and `dashboard.js` in this folder, embedded in the binary as
/// SwiftPM resources (`.embedInCode`). The page inlines the style sheet and the script where the
/// HTML links them, so a browser gets it in one answer; `scripts/mock_roas_server.py` does the same.
///
/// Vanilla JavaScript and inline SVG only. It loads `GET /v1/roas?limit=100&sort=roas`, then follows
/// `GET /v1/stream` (server-sent `row` and `stats` events), merging rows per (creator, campaign) and
/// resyncing every 30 s. A `#token=…` fragment is sent as `?access_token=…` on every request.
/// The creators table is stable for tests: `table#creators tbody tr[data-creator]` rows, each with a
/// `td.roas` cell whose text is the ROAS as "3.42×" ("–" when spend is 0), and `td.ctr`, `td.cvr`,
/// `td.aov`, `td.cpa` and `td.roi` cells with the row's own ratios (rates as "12.50%", AOV and CPA as
/// "1,234.50", "–" when null); unattributed revenue is a row with `data-unattributed="true"` instead
/// of `data-creator`.
/// With `roas serve --models`, a model switch (`select#model-switch`, remembered as `#model=NAME`)
/// picks the model whose rows the page shows: it loads `GET /v1/roas?model=NAME` and applies only
/// that model's `row` events, so the tier table, the KPIs and the chart count each purchase once.
/// The "Model spread" card (`table#spread`, from `GET /v1/spread` every few seconds) shows per
/// creator its ROAS under each model (`td.m-MODEL`), the lowest and highest (`td.lowest`,
/// `td.highest`: "1.38× first-touch") and the spread between them (`td.spread`, "1.38"),
/// widest first. Without `--models` neither is shown.
enum DashboardPage {
    static let html: String = Self.assemble(
        html: String(decoding: PackageResources.dashboard_html, as: UTF8.self),
        css: String(decoding: PackageResources.dashboard_css, as: UTF8.self),
        js: String(decoding: PackageResources.dashboard_js, as: UTF8.self))

    static let styleLink = #"<link rel="stylesheet" href="dashboard.css">"#
    static let scriptLink = #"<script src="dashboard.js"></script>"#

    /// The HTML (without its last line break) with the link to the style sheet replaced by a
    /// `<style>` element holding `css`, and the script's by a `<script>` element holding `js`.
    static func assemble(html: String, css: String, js: String) -> String {
        var page = html.hasSuffix("\n") ? String(html.dropLast()) : html
        guard let style = page.range(of: Self.styleLink) else { preconditionFailure("dashboard.html links no dashboard.css") }
        page.replaceSubrange(style, with: "<style>\n" + css + "</style>")
        guard let script = page.range(of: Self.scriptLink) else { preconditionFailure("dashboard.html links no dashboard.js") }
        page.replaceSubrange(script, with: "<script>\n" + js + "</script>")
        return page
    }
}
