"""The words of the marketers' page (``/ui``) in English and Russian.

Labels of codes and columns live in :mod:`serving.labels` (shared with the exports); this holds
the page's own sentences. A key missing in a language falls back to English, never to the key.
Placeholders are ``str.format`` fields; values are escaped by the templates, not here.
"""

from __future__ import annotations

from typing import Any

from retain.serving.labels import Language

# key -> (English, Russian)
TEXT: dict[str, tuple[str, str]] = {
    "brand": ("segments", "сегменты"),
    "nav.matrix": ("Matrix", "Матрица"),
    "nav.customer": ("Find a customer", "Найти клиента"),
    "nav.sign_out": ("Sign out", "Выйти"),
    "nav.report": ("Report", "Отчёт"),
    "lang.en": ("English", "English"),
    "lang.ru": ("Русский", "Русский"),
    # Sign-in
    "login.title": ("Sign in", "Вход"),
    # The browser keeps a session, not the key (serving/sessions.py).
    "login.intro": (("Enter your retain API key once; you stay signed in until you sign out (at "
                     "most 12 hours), and the browser never keeps the key itself. The key needs "
                     "the 'export' scope. Ask the team that runs retain if you do not have one."),
                    ("Введите API-ключ retain один раз: вход сохранится до выхода (не дольше "
                     "12 часов), а сам ключ браузер не хранит. Ключу нужно право 'export'. Если "
                     "ключа нет, попросите его у команды, которая запускает retain.")),
    "login.ended": (("Your session has ended or the key is no longer valid. Please enter an API "
                    "key again."),
                    "Сеанс завершён или ключ больше не действует. Введите API-ключ ещё раз."),
    "login.first": ("Please enter your API key first.", "Сначала введите API-ключ."),
    "login.too_large": ("That form was too large. Paste only the API key.",
                        "Форма слишком большая. Вставьте только API-ключ."),
    "login.invalid": ("That API key is not valid. Check it and try again.",
                      "Этот API-ключ недействителен. Проверьте его и попробуйте ещё раз."),
    "login.no_scope": (("That API key is valid but may not see segments and downloads: it needs "
                       "the 'export' scope. Ask for a key with that scope."),
                       ("Ключ действителен, но не даёт доступа к сегментам и выгрузкам: нужно "
                       "право 'export'. Попросите ключ с этим правом.")),
    "login.cross_origin": (("This form was sent from another site, so it was refused. Open this "
                            "page directly and sign in here."),
                           ("Эта форма отправлена с другого сайта, поэтому отклонена. Откройте "
                            "эту страницу напрямую и войдите здесь.")),
    "login.key": ("API key", "API-ключ"),
    "login.submit": ("Sign in", "Войти"),
    # Errors
    "error.request_id": ("Request id", "Номер запроса"),
    "error.back": ("Back to the matrix", "Назад к матрице"),
    "error.bad_request": ("That request could not be used", "Этот запрос нельзя выполнить"),
    "error.unavailable": ("The score store cannot be read right now",
                          "Хранилище оценок сейчас недоступно"),
    "error.unavailable_text": (("Please try again in a minute. If it keeps failing, tell the team "
                               "that runs retain and give them the request id below."),
                               ("Попробуйте ещё раз через минуту. Если ошибка повторяется, "
                               "сообщите команде, которая запускает retain, номер запроса ниже.")),
    "error.failed": ("Something went wrong", "Что-то пошло не так"),
    "error.failed_text": (("The page could not be shown. Please try again; if it keeps failing, "
                          "tell the team that runs retain and give them the request id below."),
                          ("Страницу не удалось показать. Попробуйте ещё раз; если ошибка "
                          "повторяется, сообщите команде, которая запускает retain, номер "
                          "запроса ниже.")),
    "error.too_long": ("The {name} given is too long (at most {chars} characters).",
                       "Значение «{name}» слишком длинное (не больше {chars} символов)."),
    # Home
    "home.title": ("Segments", "Сегменты"),
    "home.heading": ("Segments, goals and channels", "Сегменты, цели и каналы"),
    "home.no_run": ("There are no scores in the store yet.", "В хранилище пока нет оценок."),
    "home.no_run_how": ("Scores appear here after a scoring run, for example:",
                        "Оценки появятся после запуска оценки, например:"),
    "home.no_run_customers": ("add", "добавьте"),
    "home.no_run_then": (("so customers' channel consents are used. It writes to the same score "
                         "store this service reads; then reload this page."),
                         ("чтобы учесть согласия клиентов на каналы. Команда пишет в то же "
                         "хранилище, которое читает этот сервис; затем обновите страницу.")),
    "home.run": ("Scores as of {as_of}, made by model version {version}, finished {finished}:",
                 "Оценки на {as_of}, модель версии {version}, готовы {finished}:"),
    "home.customers": ("customers", "клиентов"),
    "home.newer_model": (("(The service now serves version {version}; the next scoring run will "
                         "use it.)"),
                         ("(Сервис уже работает на версии {version}; следующий запуск оценки "
                         "возьмёт её.)")),
    "home.at_a_glance": ("At a glance", "Коротко"),
    "home.matrix": ("Who gets what: segment, goal and channel",
                    "Кому что: сегмент, цель и канал"),
    "home.total": ("Total ({shown} of {cells} groups)", "Итого ({shown} из {cells} групп)"),
    "home.download_all": ("CSV of all shown", "CSV всех показанных"),
    "home.download_note": (("Downloads are CSV for Excel (UTF-8, columns separated by ;), one row "
                           "per customer, with the codes scripts read."),
                           ("Выгрузки — CSV для Excel (UTF-8, разделитель ;), по строке на "
                           "клиента, с кодами для скриптов.")),
    "home.no_cells": ("No group matches these filters.", "Под эти фильтры ничего не подходит."),
    "home.show_all": ("Show all", "Показать всё"),
    "home.other_segments": ("Other segments", "Другие сегменты"),
    "filter.all": ("all", "все"),
    "filter.show": ("Show", "Показать"),
    "filter.clear": ("Clear filters", "Сбросить фильтры"),
    "sum.revenue": ("revenue", "выручка"),
    "sum.extra": ("extra revenue", "доп. выручка"),
    "sum.cost": ("cost", "затраты"),
    "col.segment": ("Buying pattern", "Тип покупателя"),
    "col.download": ("Download", "Скачать"),
    "no_goal": ("(no goal)", "(без цели)"),
    "no_segment": ("(no segment)", "(без сегмента)"),
    "no_channel": ("no channel", "нет канала"),
    # Charts
    "chart.heatmap_title": ("Customers by lifecycle stage and value tier",
                            "Клиенты по стадии жизненного цикла и ценности"),
    "chart.heatmap_note": (("Customers by lifecycle stage and value tier: the darker, the more "
                           "customers. Hover a cell for its expected extra revenue."),
                           ("Клиенты по стадии жизненного цикла и ценности: чем темнее, тем "
                           "больше клиентов. Наведите на клетку, чтобы увидеть ожидаемую доп. "
                           "выручку.")),
    "chart.heat_tip": (("{stage} · {tier}: {customers} customers, expected extra revenue "
                       "{revenue}"),
                       ("{stage} · {tier}: {customers} клиентов, ожидаемая доп. выручка "
                       "{revenue}")),
    "chart.bars_note": (("By goal and by channel: customers, the extra revenue contacting them "
                        "should bring, and what the contacts cost."),
                        ("По целям и каналам: клиенты, доп. выручка от контакта и его "
                        "стоимость.")),
    "chart.goal_title": ("Customers, extra revenue and cost by goal",
                         "Клиенты, доп. выручка и затраты по целям"),
    "chart.channel_title": ("Customers, extra revenue and cost by channel",
                            "Клиенты, доп. выручка и затраты по каналам"),
    "chart.model_title": ("retain against the best other method, per task",
                          "retain против лучшего другого метода по задачам"),
    "chart.worse": ("← retain worse", "← retain хуже"),
    "chart.better": ("retain better →", "retain лучше →"),
    "chart.by_goal": ("By goal", "По целям"),
    "chart.by_channel": ("By channel", "По каналам"),
    "chart.customers": ("Customers", "Клиентов"),
    "chart.expected_incremental_revenue": ("Expected extra revenue", "Ожидаемая доп. выручка"),
    "chart.contact_cost": ("Contact cost", "Стоимость контактов"),
    "chart.as_of": ("Scores as of", "Оценка на"),
    "chart.band": ("Next order likely", "Вероятный следующий заказ"),
    "chart.expected": ("Expected order", "Ожидаемый заказ"),
    "chart.due": ("Runs out", "Закончится"),
    "chart.orders": ("Orders: {n}", "Заказов: {n}"),
    "chart.timeline_title": ("The customer's orders, next order and due product",
                             "Заказы клиента, следующий заказ и товар к пополнению"),
    # The model
    "model.heading": ("The model", "Модель"),
    "model.summary": (("Serving model version {version} (alias {alias}), trained on data before "
                      "{trained}."),
                      ("Работает модель версии {version} (метка {alias}), обучена на данных до "
                      "{trained}.")),
    "model.horizon": ("Predictions look {days} days ahead.", "Прогноз на {days} дней вперёд."),
    "model.intro": (("How it did on the most recent past period it had not seen (backtest), "
                    "against the best other method. Left: each method's score; right: retain's "
                    "advantage with its 95% interval. An interval that crosses zero is a tie "
                    "(then the simpler model is used)."),
                    ("Как модель справилась с последним периодом, которого не видела (бэктест), "
                    "против лучшего другого метода. Слева — результат каждого метода, справа — "
                    "преимущество retain с 95% интервалом. Интервал, пересекающий ноль, — "
                    "ничья (тогда берётся более простая модель).")),
    "model.table": ("The figures", "Цифры"),
    "model.measured": ("What is measured", "Что измеряем"),
    "model.used": ("Model used", "Используемая модель"),
    "model.best_other": ("Best other method", "Лучший другой метод"),
    "model.verdict": ("Verdict", "Вывод"),
    "model.difference": ("difference {diff}, interval {lo} to {hi}",
                         "разница {diff}, интервал от {lo} до {hi}"),
    "model.no_metrics": ("This model has no backtest metrics recorded.",
                         "У этой модели нет записанных метрик бэктеста."),
    "model.none": (("No model loaded: live scoring through the API is unavailable until one is "
                   "trained (retain train) and the service picks it up. Stored scores can still "
                   "be viewed and downloaded."),
                   ("Модель не загружена: оценка через API недоступна, пока модель не обучена "
                   "(retain train) и сервис её не подхватил. Сохранённые оценки можно смотреть "
                   "и скачивать.")),
    "metric.churn": ("Churn: AUC (who leaves; higher is better)",
                     "Отток: AUC (кто уйдёт; чем выше, тем лучше)"),
    "metric.value": ("Revenue: rank correlation (who spends most; higher is better)",
                     "Выручка: ранговая корреляция (кто потратит больше; чем выше, тем лучше)"),
    "metric.timing": ("Next order: mean error in days (lower is better)",
                      "Следующий заказ: средняя ошибка в днях (чем ниже, тем лучше)"),
    "metric.due_product": ("Due product: hit rate (in the next order; higher is better)",
                           "Товар к пополнению: доля попаданий (чем выше, тем лучше)"),
    "verdict.better": ("retain is better", "retain лучше"),
    "verdict.worse": ("retain is worse", "retain хуже"),
    "verdict.tie": ("a tie: the difference is within noise", "ничья: разница в пределах шума"),
    "verdict.unchecked": ("not checked against noise (trained before the check existed)",
                          "не проверено на шум (обучена до появления проверки)"),
    # A customer
    "customer.title": ("Find a customer", "Найти клиента"),
    "customer.intro": ("Shows the customer's latest stored scores, the decision and its reason.",
                       "Последние сохранённые оценки клиента, решение и его причина."),
    "lookup.id": ("Customer id", "ID клиента"),
    "lookup.find": ("Find", "Найти"),
    "lookup.customer": ("Customer", "Клиент"),
    "lookup.why": ("Why", "Почему"),
    "lookup.timeline_note": (("The grey line: the orders so far, from the first to the last; the "
                             "shaded band: the next order is likely there (8 in 10 customers "
                             "like them order within it); the blue dot: the most likely date; "
                             "the diamond: when the due product runs out."),
                             ("Серая линия — заказы до сих пор, от первого до последнего; "
                             "закрашенная полоса — здесь вероятен следующий заказ (8 из 10 "
                             "похожих клиентов заказывают в эти даты); синяя точка — самая "
                             "вероятная дата; ромб — когда закончится товар.")),
    "lookup.decision": ("Who they are and what to do", "Кто это и что делать"),
    "lookup.scores": ("What they are worth and how likely they stay",
                      "Ценность и шанс, что клиент останется"),
    "lookup.timing": ("When they will buy next", "Когда купит снова"),
    "lookup.meta": ("Scores as of {as_of}, horizon {horizon} days, model version {version}.",
                    "Оценки на {as_of}, горизонт {horizon} дн., модель версии {version}."),
    "lookup.not_found": (("Customer {id} was not found in any stored scoring run. Check the id (it "
                         "must match exactly), or the customer may have been scored after the "
                         "latest run."),
                         ("Клиент {id} не найден ни в одном сохранённом запуске оценки. Проверьте "
                         "ID (он должен совпадать точно) — или клиент появился после последнего "
                         "запуска.")),
    "yes": ("yes", "да"),
    "no": ("no", "нет"),
}
# The one-file report (serving/report.py, `retain report`, /ui/report).
REPORT_TEXT: dict[str, tuple[str, str]] = {
    "report.title": ("retain report", "Отчёт retain"),
    "report.heading": ("What retention earned, as of {as_of}", "Удержание: итоги на {as_of}"),
    "report.generated": ("Made by retain {version} from transactions before {as_of}.",
                         "Сделан retain {version} по транзакциям до {as_of}."),
    "report.nav": ("Sections", "Разделы"),
    "report.not_measured": ("Not measured", "Не измерено"),
    "report.customers": ("customers", "клиентов"),
    # Cohorts
    "report.cohorts": ("Cohorts by first-purchase month", "Когорты по месяцу первой покупки"),
    "report.cohorts_note": (("Each row is the customers who first bought in that month; each "
                            "column a month since then. A cell is the share of them who bought "
                            "in that month (the darker, the more); hover for the revenue per "
                            "customer so far. A pale last cell is a month not over yet."),
                            ("Строка — клиенты, впервые купившие в этом месяце; столбец — "
                            "месяц после первой покупки. В клетке — доля тех, кто купил в этом "
                            "месяце (чем темнее, тем больше); при наведении — выручка на "
                            "клиента к этому месяцу. Последняя бледная клетка — месяц ещё не "
                            "закончился.")),
    "report.cohort": ("First purchase", "Первая покупка"),
    "report.months_since": ("Months since the first purchase", "Месяцев после первой покупки"),
    "report.cell_tip": (("{cohort}, month {month}: {buyers} of {customers} bought ({share}); "
                        "revenue per customer so far {revenue}"),
                        ("{cohort}, месяц {month}: купили {buyers} из {customers} ({share}); "
                        "выручка на клиента к этому месяцу {revenue}")),
    "report.cohort_table": ("The cohorts' figures", "Цифры когорт"),
    "report.no_transactions": (("Not available: no transactions were given (`retain report "
                               "--transactions ...`; for /ui/report set RETAIN_TRANSACTIONS)."),
                               ("Нет данных: не переданы транзакции (`retain report "
                               "--transactions ...`; для /ui/report задайте "
                               "RETAIN_TRANSACTIONS).")),
    "report.before_data": (("Not available: this date is on or before the first transaction; "
                           "choose a later date (`?as_of=` or `--as-of`)."),
                           ("Нет данных: эта дата не позже первой транзакции; выберите дату "
                           "позже (`?as_of=` или `--as-of`).")),
    # LTV
    "report.ltv": ("LTV curves by acquisition channel", "Кривые LTV по каналам привлечения"),
    "report.ltv_note": (("Revenue per customer, accumulated month by month since the first "
                        "purchase, by {source}. Each month counts only the customers observed "
                        "that long."),
                        ("Накопленная выручка на клиента по месяцам после первой покупки, "
                        "по {source}. Каждый месяц считается только по клиентам, которых "
                        "наблюдаем так долго.")),
    "report.source_customers": ("the customers table's acquisition channel",
                                "каналу привлечения из таблицы клиентов"),
    "report.source_orders": ("the channel of the first purchase (no customers table given)",
                             "каналу первой покупки (таблица клиентов не передана)"),
    "report.ltv_axis": ("Revenue per customer", "Выручка на клиента"),
    "report.unit": ("Unit economics by acquisition channel",
                    "Юнит-экономика по каналам привлечения"),
    "report.unit_note": (("LTV = revenue per customer so far + the predicted 12-month CLV; "
                         "CAC = the channel's spend over the customers it acquired in the same "
                         "months. The rule of thumb: LTV/CAC above 3."),
                         ("LTV = выручка на клиента до сих пор + прогноз CLV на 12 месяцев; "
                         "CAC = затраты канала на клиентов, привлечённых в те же месяцы. "
                         "Правило: LTV/CAC выше 3.")),
    "report.no_costs": (("No costs file given: CAC and LTV/CAC need `--costs costs.csv` "
                        "(acquisition_channel, month, spend)."),
                        ("Файл затрат не передан: для CAC и LTV/CAC нужен `--costs costs.csv` "
                        "(acquisition_channel, month, spend).")),
    # Costs rows that matched no customer (analytics.cohorts.unmatched_spend).
    "report.costs_channel": (("Channels of the costs file that acquired no customer (no "
                              "customer has them as acquisition channel): {names}; spend "
                              "{spend} over {months} month(s) left out of CAC and LTV/CAC."),
                             ("Каналы из файла затрат, которые не привели ни одного клиента "
                              "(ни у кого из клиентов нет такого канала привлечения): {names}; "
                              "затраты {spend} за месяцев: {months}, не учтены в CAC и "
                              "LTV/CAC.")),
    "report.costs_month_counted": (("Months of the costs file with spend and no customer "
                                    "acquired: {names}; spend {spend} counted in its channel's "
                                    "CAC (spend that acquired no one)."),
                                   ("Месяцы из файла затрат с расходами, но без новых клиентов: "
                                    "{names}; затраты {spend} учтены в CAC своего канала "
                                    "(расходы, которые никого не привели).")),
    "report.costs_month_left": (("Months of the costs file with spend and no customer "
                                 "acquired: {names}; spend {spend} left out (no cohort to divide "
                                 "it by)."),
                                ("Месяцы из файла затрат с расходами, но без новых клиентов: "
                                 "{names}; затраты {spend} не учтены (нет когорты, на которую их "
                                 "разделить).")),
    "report.and_more": ("and {count:,} more", "и ещё {count:,}"),
    "col.cohort": ("Cohort", "Когорта"),
    "col.customers": ("Customers", "Клиентов"),
    "col.repeat_rate": ("Repeat rate", "Повторные"),
    "col.aov": ("AOV", "Средний чек"),
    "col.first_order_value": ("First order", "Первый заказ"),
    "col.revenue_per_customer": ("Revenue per customer", "Выручка на клиента"),
    "col.predicted_clv_12m": ("CLV 12 m (predicted)", "CLV 12 мес (прогноз)"),
    "col.cac": ("CAC", "CAC"),
    "col.ltv": ("LTV", "LTV"),
    "col.ltv_cac": ("LTV/CAC", "LTV/CAC"),
    # The model
    "report.model": ("Gains and reliability", "Gains и надёжность прогноза"),
    "report.model_note": (("The scores of {as_of} against what then happened in the next "
                          "{days} days ({customers} customers). Gains: the share of that "
                          "revenue brought by the top customers by predicted revenue. "
                          "Reliability: the predicted churn probability against the share who "
                          "did not buy."),
                          ("Оценки на {as_of} против того, что случилось за следующие {days} "
                          "дней ({customers} клиентов). Gains — доля этой выручки от лучших "
                          "клиентов по прогнозу выручки. Надёжность — прогноз вероятности "
                          "оттока против доли тех, кто не купил.")),
    "report.model_backtest": (("The registered model's backtest (version {version}): gains and "
                              "reliability on the last period it had not seen."),
                              ("Бэктест зарегистрированной модели (версия {version}): gains и "
                              "надёжность на последнем периоде, которого она не видела.")),
    "report.no_model": (("Not available: no scoring run old enough to compare with what happened "
                        "(a run whose as-of date plus horizon is before this report's), and no "
                        "registered model's backtest plots. Run `retain score` and `retain "
                        "train`."),
                        ("Нет данных: нет запуска оценки, достаточно старого, чтобы сравнить "
                        "с тем, что случилось, и нет графиков бэктеста зарегистрированной "
                        "модели. Запустите `retain score` и `retain train`.")),
    "report.gains_title": ("Gains: share of the revenue captured", "Gains: доля выручки"),
    "report.gains_x": ("Share of customers, by predicted revenue",
                       "Доля клиентов по прогнозу выручки"),
    "report.gains_y": ("Share of the revenue", "Доля выручки"),
    "report.random": ("random", "случайно"),
    "report.reliability_title": ("Reliability of the churn probability",
                                 "Надёжность вероятности оттока"),
    "report.reliability_x": ("Predicted churn probability", "Прогноз вероятности оттока"),
    "report.reliability_y": ("Share who did not buy", "Доля не купивших"),
    "report.retain": ("retain", "retain"),
    "report.bgnbd_gg": ("BG/NBD x GG", "BG/NBD x GG"),
    # AOV x frequency x lifetime; a legend holds 18 characters.
    "report.formula": ("AOV formula", "формула по чеку"),
    "report.backtest_images_en": (
        ("This model's plots were drawn at training, in English: it was trained before retain "
         "train kept their points. Retrain it (retain train) and the report draws them in the "
         "reader's language."),
        ("Графики этой модели нарисованы при обучении и подписаны по-английски: модель "
         "обучена до того, как retain train стал сохранять их точки. Переобучите её "
         "(retain train), и отчёт нарисует их по-русски.")),
    "report.predicted_churn": ("predicted churn", "прогноз оттока"),
    "report.observed_churn": ("observed churn", "фактический отток"),
    "report.calibration_title": ("Churn, predicted and observed, per scoring run",
                                 "Отток: прогноз и факт по запускам оценки"),
    "report.calibration_x": ("The run's as-of date", "Дата запуска оценки"),
    "report.calibration_note": (("Each of the {runs} scoring runs whose horizon has passed: the "
                                "churn it predicted for its customers against what they did."),
                                ("Каждый из {runs} запусков оценки, чей горизонт прошёл: "
                                "предсказанный отток его клиентов против того, что они "
                                "сделали.")),
    # The effect
    "report.effect": ("The effect by channel over time", "Эффект по каналам во времени"),
    "report.effect_note": (("Revenue per contacted customer minus that of the global control "
                           "group, per channel and month, with its {confidence} interval: green "
                           "above zero, red below, grey when it crosses zero (not shown to be "
                           "real)."),
                           ("Выручка на клиента, получившего сообщение, минус выручка "
                           "глобальной контрольной группы, по каналам и месяцам, с "
                           "{confidence} интервалом: зелёный — выше нуля, красный — ниже, "
                           "серый — пересекает ноль (эффект не доказан).")),
    "report.no_effect": (("Not measured: give the contacts log (`retain report --contacts "
                         "contacts.csv`) or the output of `retain effect --split channel --out "
                         "effect.csv` (`--effect effect.csv`), or run `retain effect --split "
                         "channel` (the store keeps it)."),
                         ("Не измерено: передайте журнал контактов (`retain report --contacts "
                         "contacts.csv`) или результат `retain effect --split channel --out "
                         "effect.csv` (`--effect effect.csv`), или запустите `retain effect "
                         "--split channel` (хранилище его сохранит).")),
    "col.period": ("Period", "Период"),
    "col.split": ("Channel", "Канал"),
    "col.raw_difference": ("Difference measured", "Разница: измерено"),
    "col.difference": ("Difference estimate (CUPED)", "Разница: оценка (CUPED)"),
    "col.interval": ("Interval", "Интервал"),
    # What the effect table's rows are per customer, by its metric.
    "effect.metric.revenue": ("revenue per customer", "выручка на клиента"),
    "effect.metric.orders": ("orders per customer", "заказы на клиента"),
    "effect.metric.buyers": ("share of customers who bought", "доля купивших"),
    "col.relative_lift": ("Lift", "Прирост"),
    "col.incremental_revenue": ("Extra revenue", "Доп. выручка"),
    "col.cost": ("Cost", "Затраты"),
    "col.romi": ("ROMI", "ROMI"),
    # Drift
    "report.drift": ("Drift since the previous scoring run", "Дрейф с прошлого запуска оценки"),
    "report.drift_note": (("Population stability index (PSI) per feature and score against the "
                          "previous run: below 0.1 stable, 0.1 to 0.25 moderate, above 0.25 "
                          "shifted."),
                          ("Индекс стабильности (PSI) каждого признака и оценки против прошлого "
                          "запуска: ниже 0,1 — стабильно, 0,1–0,25 — умеренно, выше 0,25 — "
                          "сдвиг.")),
    "drift.stable": ("stable", "стабильно"),
    "drift.moderate": ("moderate", "умеренно"),
    "drift.shifted": ("shifted", "сдвиг"),
    "report.no_drift": (("Not measured: drift is kept by `retain score` for each run against the "
                        "previous one; score at least twice."),
                        ("Не измерено: дрейф записывает `retain score` для каждого запуска "
                        "против предыдущего; нужно хотя бы два запуска.")),
    "report.drift_title": ("PSI per column, the most shifted first",
                           "PSI по столбцам, сначала самые сдвинутые"),
    # Segments
    "report.segments": ("The segment matrix", "Матрица сегментов"),
    "report.segments_note": (("Customers of the scoring run of {as_of} by lifecycle stage and "
                             "value tier; hover a cell for the extra revenue contacting them "
                             "should bring."),
                             ("Клиенты запуска оценки на {as_of} по стадии жизненного цикла и "
                             "ценности; при наведении — ожидаемая доп. выручка от контакта.")),
    "report.no_segments": (("Not available: no scoring run in the score store as of this date "
                           "(`retain score`)."),
                           ("Нет данных: в хранилище нет запуска оценки на эту дату "
                           "(`retain score`).")),
}
# `retain effect` and `retain channels` in the terminal (--lang): the report's words where it
# has them (col.*, effect.metric.*), these for the rest.
CLI_TEXT: dict[str, tuple[str, str]] = {
    "cli.split": ("split", "Разрез"),
    "cli.metric": ("metric", "Показатель"),
    "cli.treated_control": ("treated/control", "Контакт/контроль"),
    "cli.difference_estimate": ("difference estimate [{confidence} CI]",
                                "Разница: оценка [{confidence} интервал]"),
    "cli.too_few": ("too few", "мало клиентов"),
    "cli.all": ("all", "все"),
    "cli.effect_title": ("Effect against the global control group, {start} to {end}",
                         "Эффект против глобальной контрольной группы, {start} – {end}"),
    "cli.effect_by.channel": (", by channel", ", по каналам"),
    "cli.effect_by.goal": (", by goal", ", по целям"),
    "cli.effect_by.segment": (", by segment", ", по сегментам"),
    "cli.effect_caption": (("difference measured: contacted minus control per customer, as it "
                            "came. difference estimate: {estimate}; lift, extra revenue and ROMI "
                            "use the estimate"),
                           ("Разница: измерено — получившие сообщение минус контроль, на "
                            "клиента, как есть. Разница: оценка — {estimate}; прирост, доп. "
                            "выручка и ROMI считаются по оценке")),
    "cli.effect_cuped": (("adjusted by CUPED for each customer's past spend: the same difference "
                          "with a narrower interval, which can differ from the measured one, "
                          "even in sign, where the interval is wide"),
                         ("поправлена CUPED на прошлые траты каждого клиента: та же разница с "
                          "более узким интервалом; где интервал широк, она может отличаться от "
                          "измеренной, даже знаком")),
    "cli.effect_no_cuped": ("the measured difference itself (--no-cuped)",
                            "сама измеренная разница (--no-cuped)"),
    "cli.first_rows": (". The first {limit} of {rows} rows; all are in the file",
                       ". Первые {limit} из {rows} строк; все — в файле"),
    "cli.unmatched": (("{t_unknown} of {t_all} contacted and {c_unknown} of {c_all} control "
                       "customers have no transaction before {end}; they are counted with zero "
                       "revenue on both sides (many of them: do both files use the same ids?)"),
                      ("у {t_unknown} из {t_all} получивших сообщение и {c_unknown} из {c_all} "
                       "клиентов контрольной группы нет покупок до {end}; их выручка считается "
                       "нулевой с обеих сторон (если их много: одинаковы ли id в обоих "
                       "файлах?)")),
    "cli.too_few_note": (("{small} of {all} comparisons have fewer than {min_group} contacted or "
                          "control customers: too few to judge, their intervals are left empty "
                          "(--min-group)"),
                         ("в {small} из {all} сравнений меньше {min_group} клиентов с одной из "
                          "сторон: слишком мало для вывода, их интервалы пусты (--min-group)")),
    "cli.effect_done": ("{rows} rows ({percent}% intervals, margin {margin} for ROMI{assumed})",
                        "{rows} строк ({percent}% интервалы, маржа {margin} для ROMI{assumed})"),
    "cli.margin_assumed": ((": the built-in rules' assumption, not measured; give your shop's as "
                            "offers.margin in --rules"),
                           (": допущение встроенных правил, не измерено; задайте маржу своего "
                            "магазина как offers.margin в --rules")),
    "cli.saved": ("saved to {out}", "сохранено в {out}"),
    "cli.kept": ("kept in {url} for GET /v1/effect", "сохранено в {url} для GET /v1/effect"),
    "cli.not_kept_trial": ("not kept for GET /v1/effect (--no-store)",
                           "не сохранено для GET /v1/effect (--no-store)"),
    "cli.not_kept": ("not kept in the score store ({error})",
                     "не сохранено в хранилище оценок ({error})"),
    "cli.channels_title": ("Channels by {period}, {start} to {end}",
                           "Каналы по {period}, {start} – {end}"),
    "cli.period.month": ("month", "месяцам"),
    "cli.period.quarter": ("quarter", "кварталам"),
    "cli.split_title": ("Split of the messages after {period}",
                        "Распределение сообщений после {period}"),
    "cli.reach": ("reach", "Охват"),
    "cli.response": ("response", "Отклик"),
    "cli.control": ("control", "Контроль"),
    "cli.uplift_measured": ("uplift measured", "Аплифт: измерено"),
    "cli.uplift_estimate": ("uplift estimate", "Аплифт: оценка"),
    "cli.revenue_per_contact": ("extra revenue / contact", "Доп. выручка / контакт"),
    "cli.return_per_cost": ("return / cost", "Отдача / затраты"),
    "cli.status": ("status", "Статус"),
    "cli.last_period": ("last period", "Прошлый период"),
    "cli.next_period": ("next period", "Следующий период"),
    "cli.uplift_caption": (("uplift measured: response minus control, as it came. uplift "
                            "estimate: shrunk toward {toward}{weight}; the decisions and the "
                            "money columns use the estimate (docs/effect.md says why)"),
                           ("Аплифт: измерено — отклик минус контроль, как есть. Аплифт: оценка "
                            "— сжат к {toward}{weight}; решения и денежные столбцы используют "
                            "оценку (почему — в docs/effect.md)")),
    "cli.toward": ("the default", "значению по умолчанию"),
    "cli.toward_value": ("the default {value}", "значению по умолчанию {value}"),
    "cli.weight": (" as if {messages} more messages had shown it",
                   " как если бы ещё {messages} сообщений показали его"),
}
TEXT.update(REPORT_TEXT)
TEXT.update(CLI_TEXT)
_INDEX = {"en": 0, "ru": 1}


def text(key: str, lang: Language = "en", **values: Any) -> str:
    """The page's sentence ``key`` in ``lang``, with ``values`` filled in."""
    words = TEXT[key][_INDEX[lang]] or TEXT[key][0]
    return words.format(**values) if values else words
