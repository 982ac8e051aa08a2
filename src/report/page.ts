// The report page's fixed parts: its stylesheet, its tooltip script, and table cells.
import { esc } from './chart';

export const style = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;margin:0;background:#f6f6f4}
main{max-width:1000px;margin:0 auto;padding:20px 24px 40px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px 16px;margin:14px 0}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0 0}
dl.meta dt{color:#666}dl.meta dd{margin:0;overflow-wrap:anywhere}
code,pre{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f3f3f3;padding:6px 8px;border-radius:4px;margin:6px 0}
table{border-collapse:collapse;margin:6px 0}th,td{padding:3px 12px 3px 0;text-align:left;vertical-align:top}
th{color:#555;font-weight:600;border-bottom:1px solid #ddd}td:first-child{white-space:nowrap}td.n{text-align:right;font-variant-numeric:tabular-nums}
.verdict{border-left:6px solid #888}.verdict h3{margin:2px 0 6px;font-size:17px}
.k-js-heap-growth,.k-native-growth{border-left-color:#d62728}.k-fragmentation{border-left-color:#ff7f0e}
.k-stable{border-left-color:#2ca02c}.k-insufficient-evidence,.k-unavailable{border-left-color:#999}
.badge{display:inline-block;font-size:12px;padding:0 7px;border-radius:9px;background:#eee;margin-right:6px}
.sev-critical{background:#d62728;color:#fff}.sev-warn{background:#ff7f0e;color:#fff}.sev-info{background:#1f77b4;color:#fff}
.finding{margin:10px 0}.note{color:#666;font-size:13px}
svg.chart{width:100%;height:auto;display:block;font:12px system-ui,sans-serif;background:#fff}
svg .grid{stroke:#ececec}svg .axis{stroke:#444}svg .chart-title{font-size:14px;font-weight:600}
svg .axis-label{fill:#555}svg .area{opacity:.9}svg .trim-label{font-size:10px;fill:#222}
svg rect.hover{fill:transparent}svg rect.hover:hover{fill:rgba(0,0,0,.07)}
#tip{position:fixed;display:none;pointer-events:none;background:#222;color:#fff;padding:6px 8px;border-radius:4px;font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;white-space:pre;z-index:9}
`;

// Shows the hovered column's data-tip; text only (textContent), and nothing can throw out of it.
export const script =
  `(function(){try{var tip=document.getElementById('tip');if(!tip)return;` +
  `document.addEventListener('mousemove',function(e){try{var t=e.target,s=t&&t.getAttribute?t.getAttribute('data-tip'):null;` +
  `if(!s){tip.style.display='none';return;}tip.textContent=s;tip.style.display='block';` +
  `var x=e.clientX+14,y=e.clientY+14;if(x+tip.offsetWidth>innerWidth-4)x=e.clientX-tip.offsetWidth-14;` +
  `if(y+tip.offsetHeight>innerHeight-4)y=e.clientY-tip.offsetHeight-14;tip.style.left=Math.max(0,x)+'px';tip.style.top=Math.max(0,y)+'px';` +
  `}catch(_){}});}catch(_){}})();`;

export function table(head: string[], rows: string[][], cls = ''): string {
  return (
    `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${r.join('')}</tr>`).join('') +
    '</tbody></table>'
  );
}
export const td = (text: string) => `<td>${esc(text)}</td>`;
export const tdNum = (text: string, attr: Record<string, number | string> = {}) =>
  `<td class="n"${Object.entries(attr)
    .map(([k, v]) => ` data-${k}="${esc(String(v))}"`)
    .join('')}>${esc(text)}</td>`;
