"""Card model → HTML for the built-in console. Jinja2 autoescapes every untrusted string."""

from __future__ import annotations

from jinja2 import Environment, select_autoescape

from cards.model import Card

_env = Environment(autoescape=select_autoescape(default=True), trim_blocks=True,
                   lstrip_blocks=True)
_TEMPLATE = _env.from_string(
    """<div class="card card-{{ card.color }}{% if card.locked %} locked{% endif %}" \
data-kind="{{ card.kind }}" data-task="{{ card.task_id or '' }}" \
data-version="{{ card.version or '' }}">
  <div class="card-head"><span class="card-title">{{ card.title }}</span>
  {% if card.subtitle %}<span class="badge">{{ card.subtitle }}</span>{% endif %}</div>
  {% if card.fields %}<dl class="fields">
  {% for f in card.fields %}<div class="field{% if not f.short %} wide{% endif %}">\
<dt>{{ f.label }}</dt><dd>{{ f.value }}</dd></div>{% endfor %}
  </dl>{% endif %}
  {% if card.text %}<p class="text">{{ card.text }}</p>{% endif %}
  {% if card.table %}<table class="lines"><thead><tr>\
{% for h in card.table_header %}<th>{{ h }}</th>{% endfor %}</tr></thead><tbody>
  {% for row in card.table %}<tr>{% for c in row.cells %}<td>{{ c }}</td>{% endfor %}</tr>\
{% endfor %}
  </tbody></table>{% endif %}
  {% if card.buttons %}<div class="buttons">
  {% for b in card.buttons %}{% if b.url %}<a class="btn" href="{{ b.url }}" target="_blank" \
rel="noopener">{{ b.label }}</a>{% else %}<button class="btn btn-{{ b.style }}" \
data-action="{{ b.action }}" data-value="{{ b.value }}" \
data-needs-input="{{ 'true' if b.needs_input else 'false' }}">{{ b.label }}</button>\
{% endif %}{% endfor %}
  </div>{% endif %}
  {% if card.footer %}<div class="footer">{{ card.footer }}</div>{% endif %}
</div>"""
)


def render_html(card: Card) -> str:
    return _TEMPLATE.render(card=card)
