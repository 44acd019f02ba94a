"""Writes pii_corpus.jsonl: fictional CX messages with labelled PII, seeded and deterministic.

Each message is a template whose slots are filled with fictional values; a slot of a PII kind
records its span as it is written, so offsets are right by construction. Near misses (order
numbers, dates, prices, bad checksums, SSNs in never-issued areas) are slots without a label.
Run `python tests/ingest/make_corpus.py` after a change and commit both files.
"""

from __future__ import annotations

import json
import random
import re
import string
from collections.abc import Callable
from pathlib import Path

SEED = 20261122
OUT = Path(__file__).with_name("pii_corpus.jsonl")
USES_PER_TEMPLATE = 5

Rng = random.Random
Fill = Callable[[Rng], tuple[str, str | None]]


def _d(rng: Rng, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _pick(rng: Rng, *formats: str) -> str:
    """One of `formats`, with each run of 'x' replaced by random digits."""
    return re.sub("x+", lambda m: _d(rng, len(m.group())), rng.choice(formats))


# --- PII (labelled) ---------------------------------------------------------------------------

FIRST = ["ana", "ben", "chloe", "dev", "elif", "femi", "greta", "hugo", "ines", "jonas", "kasia"]
LAST = ["lopez", "smith", "okafor", "muller", "dubois", "rossi", "garcia", "devries", "nowak"]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com", "eu.example.org"]


def email(rng: Rng) -> tuple[str, str | None]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = rng.choice(
        [f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}{_d(rng, 2)}", f"{first}+cx",
         f"{last}.{first}", f"{first.capitalize()}.{last.capitalize()}", f"{first}{_d(rng, 4)}"]
    )  # fmt: skip
    return f"{local}@{rng.choice(DOMAINS)}", "EMAIL"


PHONES: dict[str, tuple[str, ...]] = {
    # Ofcom's numbers for drama: 07700 900xxx, 020 7946 0xxx, 0161 496 0xxx, ...
    "gb": ("07700 900xxx", "07700900xxx", "+44 7700 900xxx", "+447700900xxx",
           "+44 (0)7700 900xxx", "07700 900 xxx", "020 7946 0xxx", "0161 496 0xxx",
           "0113 496 0xxx", "+44 20 7946 0xxx", "(020) 7946 0xxx", "+44 131 496 0xxx"),
    # NANP's 555-0100 to 555-0199 are for fiction.
    "us": ("(201) 555-01xx", "212-555-01xx", "415.555.01xx", "+1 312 555 01xx",
           "1-617-555-01xx", "+1 (305) 555-01xx", "818 555 01xx", "+120255501xx"),
    # Bundesnetzagentur's numbers for film and television; mobile numbers merely possible.
    "de": ("030 23125xxx", "030/23125xxx", "+49 30 23125xxx", "069 90009xxx", "040 66969xxx",
           "089 99998xxx", "0221 4710xxx", "0151 2345 xxxx", "+49 151 2345xxxx",
           "030 / 23125xxx", "+49 (0)30 23125xxx"),
    # ARCEP's numbers for fiction.
    "fr": ("01 99 00 xx xx", "06 39 98 xx xx", "+33 1 99 00 xx xx", "+33 6 39 98 xx xx",
           "01.99.00.xx.xx", "0639 98 xx xx", "+33 (0)1 99 00 xx xx"),
    "it": ("02 8901 xxxx", "06 6988 xxxx", "347 123 xxxx", "+39 347 123 xxxx",
           "+39 02 8901 xxxx", "333 45xxxxx"),
    "es": ("612 34x xxx", "91 123 xx xx", "+34 612 34x xxx", "612 34 xx xx", "+34 91 123 xx xx"),
    "nl": ("020 123 xxxx", "06-1234xxxx", "06 1234 xxxx", "+31 6 1234 xxxx", "+31 20 123 xxxx",
           "010-123xxxx"),
    "pl": ("512 34x xxx", "+48 512 34x xxx", "22 123 xx xx", "601-23x-xxx", "+48 22 123 xx xx"),
}  # fmt: skip


def phone(region: str) -> Fill:
    def fill(rng: Rng) -> tuple[str, str | None]:
        value = _pick(rng, *PHONES[region])
        if region == "fr" and value.startswith("0639 "):
            value = "06 39" + value[4:]
        return value, "PHONE"

    return fill


CARDS = [
    "4111111111111111", "4242424242424242", "4012888888881881", "4000056655665556",
    "5555555555554444", "5105105105105100", "2223003122003222", "378282246310005",
    "371449635398431", "6011111111111117", "6011000990139424", "3530111333300000",
    "3566002020360505", "4222222222222",
]  # fmt: skip


def card(rng: Rng) -> tuple[str, str | None]:
    number = rng.choice(CARDS)
    style = rng.choice(["space", "space", "dash", "plain"])
    if style == "plain":
        return number, "CARD"
    sep = " " if style == "space" else "-"
    if len(number) == 15:  # American Express: 4-6-5
        groups = [number[:4], number[4:10], number[10:]]
    else:
        groups = [number[i : i + 4] for i in range(0, len(number), 4)]
    return sep.join(groups), "CARD"


IBAN_EXAMPLES = [
    "GB82WEST12345698765432", "DE89370400440532013000", "FR1420041010050500013M02606",
    "ES9121000418450200051332", "IT60X0542811101000000123456", "NL91ABNA0417164300",
    "PL61109010140000071219812874", "BE68539007547034", "AT611904300234573201",
    "CH9300762011623852957", "IE29AIBK93115212345678", "PT50000201231234567890154",
]  # fmt: skip
BBAN = {  # country: BBAN layout (a: capital letter, n: digit, c: either)
    "GB": "aaaannnnnnnnnnnnnn", "DE": "nnnnnnnnnnnnnnnnnn", "FR": "nnnnnnnnnnccccccccccccc",
    "ES": "nnnnnnnnnnnnnnnnnnnn", "IT": "annnnnnnnnncccccccccccc", "NL": "aaaannnnnnnnnn",
    "PL": "nnnnnnnnnnnnnnnnnnnnnnnn", "BE": "nnnnnnnnnnnn", "AT": "nnnnnnnnnnnnnnnn",
}  # fmt: skip


def iban_check_digits(country: str, bban: str) -> str:
    number = int("".join(str(int(ch, 36)) for ch in bban + country + "00"))
    return f"{98 - number % 97:02d}"


def _random_iban(rng: Rng) -> str:
    country = rng.choice(list(BBAN))
    pools = {"a": string.ascii_uppercase, "n": string.digits, "c": string.digits * 3 + "ABCMX"}
    bban = "".join(rng.choice(pools[slot]) for slot in BBAN[country])
    return country + iban_check_digits(country, bban) + bban


def iban(rng: Rng) -> tuple[str, str | None]:
    compact = rng.choice(IBAN_EXAMPLES) if rng.random() < 0.4 else _random_iban(rng)
    value = compact
    if rng.random() < 0.75:
        value = " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
    return value.lower() if rng.random() < 0.05 else value, "IBAN"


def ip(rng: Rng) -> tuple[str, str | None]:
    value = rng.choice(
        [f"192.0.2.{rng.randint(1, 254)}", f"198.51.100.{rng.randint(1, 254)}",
         f"203.0.113.{rng.randint(1, 254)}", f"2001:db8::{rng.randint(1, 0xFFFF):x}",
         f"2001:db8:{rng.randint(1, 0xFFFF):x}::{rng.randint(1, 0xFF):x}",
         "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "2001:db8:85a3::8a2e:370:7334"]
    )  # fmt: skip
    return value, "IP"


def ssn(rng: Rng) -> tuple[str, str | None]:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    sep = "-" if rng.random() < 0.85 else " "
    value = f"{area:03d}{sep}{rng.randint(1, 99):02d}{sep}{rng.randint(1, 9999):04d}"
    return rng.choice([value, value, value, "123-45-6789"]), "US_SSN"


def ssn_after_the_word(rng: Rng) -> tuple[str, str | None]:
    """An SSN right after "SSN" or "social", where people also write it without separators."""
    value, kind = ssn(rng)
    return (value.replace("-", "").replace(" ", "") if rng.random() < 0.4 else value), kind


def nino(rng: Rng) -> tuple[str, str | None]:
    while True:
        prefix = rng.choice("ABCEGHJKLMNOPRSTWXYZ") + rng.choice("ABCEGHJKLMNPRSTWXYZ")
        if prefix not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
            break
    digits, suffix = _d(rng, 6), rng.choice("ABCD")
    value = f"{prefix}{digits}{suffix}"
    if rng.random() < 0.6:
        value = f"{prefix} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"
    # Typed in lower case now and then, as people do in chat.
    return value.lower() if rng.random() < 0.05 else value, "UK_NINO"


# --- near misses and filler (not labelled) --------------------------------------------------


def plain(*choices: str) -> Fill:
    return lambda rng: (_pick(rng, *choices), None)


def bad_card(rng: Rng) -> tuple[str, str | None]:
    number = rng.choice(CARDS)
    wrong = number[:-1] + str((int(number[-1]) + rng.randint(1, 9)) % 10)
    return " ".join(wrong[i : i + 4] for i in range(0, len(wrong), 4)), None


def bad_iban(rng: Rng) -> tuple[str, str | None]:
    compact = rng.choice(IBAN_EXAMPLES)
    check = (int(compact[2:4]) + rng.randint(1, 9)) % 100
    wrong = f"{compact[:2]}{check:02d}{compact[4:]}"
    return " ".join(wrong[i : i + 4] for i in range(0, len(wrong), 4)), None


FILL: dict[str, Fill] = {
    "email": email,
    "email_upper": lambda rng: (email(rng)[0].upper(), "EMAIL"),
    "gb": phone("gb"), "us": phone("us"), "de": phone("de"), "fr": phone("fr"),
    "it": phone("it"), "es": phone("es"), "nl": phone("nl"), "pl": phone("pl"),
    "card": card, "iban": iban, "ip": ip, "ssn": ssn, "ssn_word": ssn_after_the_word,
    "nino": nino,
    "name": lambda rng: (rng.choice(FIRST).capitalize() + " " + rng.choice(LAST).capitalize(),
                         None),
    "order": plain("ORD-2024-xxxxxx", "#xxxxx", "A-xxxxxxx", "xxxxxx", "SO-xxxx-xxxx", "xxxxxxxx"),
    "tracking": plain("1Z999AA1xxxxxxxxxx", "JD0146000xxxxxxxxxx", "RR12345xxxxGB",
                      "JJD00xxxxxxxxxx", "9400 1000 0000 0000 xxxx xx", "xxx xxx xxx"),
    "date": plain("13/01/2024", "2024-01-13", "13.01.2024", "01/13/2024", "2 March 2025",
                  "2025-03-1x", "1x/0x/2025"),
    "time": plain("10:32", "14:05:22", "09:15", "17.30", "8:4x"),
    "price": plain("£129.99", "€1.299,00", "$2,499.00", "49,90 €", "1 299,00 zł", "£xx.99",
                   "$x,xxx.00", "EUR 3x,50"),
    "version": plain("v3.14.2", "version 2.0.1", "120.0.6099.109", "10.0.19045.2965", "4.2",
                     "build 2024.11.3"),
    "ref": plain("CS-2024-00xxx", "ticket #88xxx", "case 00512xxx", "ref xxxx xxxx", "INC00xxxxx",
                 "RMA-xxxxx"),
    "qty": plain("2 x 250g", "3 items", "12 pcs", "x boxes", "1x"),
    "bad_ssn": plain("000-12-3456", "666-xx-xxxx", "9xx-xx-xxxx", "123-00-xxxx", "078-05-0000"),
    "bad_card": bad_card,
    "bad_iban": bad_iban,
    "bad_ip": plain("999.1.1.1", "256.100.50.25", "192.168.1", "300.0.2.1"),
    "bad_nino": plain("QQ 12 34 56 C", "GB 12 34 56 A", "AO 12 34 56 C", "AB 12 34 56 E"),
    "postcode": plain("SW1A 1AA", "M1 1AE", "10115 Berlin", "75008 Paris", "28013 Madrid",
                      "00-950 Warszawa", "1012 AB Amsterdam", "90210"),
}  # fmt: skip


# --- messages ---------------------------------------------------------------------------------

TEMPLATES: dict[str, list[str]] = {
    "en": [  # English: chat, call-centre notes, e-mails, reviews
        "Hi, I never got my parcel for order {order}. You can email me at {email}.",
        "hey its {name} again, my new number is {gb} if the courier needs it",
        "Can someone call me back on {gb}? Order {order}, placed {date}.",
        "I was charged twice on card {card} for order {order} ({price}). Please refund one.",
        "My email changed, please use {email} instead of the old one. Thanks!",
        "The refund should go to my account {iban}, not the card.",
        "Please send the invoice to {email} and text me on {gb} when it ships",
        "I tried to log in from {ip} at {time} and got locked out, ticket {ref}",
        "ok so the app ({version}) crashes when I pay with card ending 1111. tracking {tracking}",
        "you can reach me at {us} after 5pm Eastern, or {email}",
        "My SSN is {ssn}, the form keeps asking for it again and again?",
        "NI number {nino} - needed for the payroll discount you advertise",
        "Changed my bank details: IBAN {iban}. Old one was closed on {date}.",
        "phone: {us}\nemail: {email}\norder: {order}",
        "Delivery to {postcode} failed twice ({date}, {time}). Reach me on {gb}.",
        "Is {email} the right address for returns? Also my card {card} expired.",
        "Pls cancel {order}, I ordered {qty} by mistake. Refund {price} to {iban}",
        "Agent note: customer {name} called re {ref}. Verified via DOB and postcode {postcode}. "
        "Callback number {gb}.",
        "Caller gave SSN {ssn} to verify identity; advised we never ask for it by phone. "
        "Escalated.",
        "Customer read out card number {card} on the call, asked to use the secure line instead.",
        "Verified NINO {nino} for the employer scheme; order {order} linked to account.",
        "Fraud check: login from {ip}, then from {ip} ten minutes later. Account locked {date}.",
        "Callback requested: {us}, best time {time}. Issue: double charge {price}.",
        "Cust. wants refund to IBAN {iban}. Amount {price}. Ref {ref}.",
        "Spoke to {name}, new mobile {gb}, old email {email} bounces.",
        "From: {name} <{email}>\nTo: support <{email}>\nPhone: {us}",
        "CONTACT {email_upper} OR CALL {gb}",
        "tel:{gb} / mail:{email} / ip={ip}",
        "Note: cust. in Spain, mobile {es}, prefers WhatsApp. Order {order}.",
        "Cust. confirmed address {postcode}; phone {us}; SSN on file ends 6789 (not read out).",
        "Chargeback on card {card} ({price}, {date}). Customer disputes; IP at checkout {ip}.",
        "Dear support,\n\nMy order {order} from {date} has not arrived. Please contact me at "
        "{email} or {gb}.\n\nKind regards,\n{name}",
        "Hello,\nplease update my payment details to IBAN {iban} and my phone to {us}.\nThanks",
        "Subject: Refund {ref}\n\nThe refund of {price} went to card {card}? "
        "I expected it on {date}.",
        "Hi team,\nforwarding the customer's details: {email}, {us}, SSN {ssn}.\nBest",
        "To whom it may concern,\nmy National Insurance number is {nino} and my email {email}.",
        "Great service, the agent sorted it in minutes. Would recommend. Order {order}.",
        "Terrible. Waited {qty} weeks. If anyone from the company reads this: {email}",
        "5 stars! Arrived {date}, well packed, {price} well spent.",
        "App v{version} keeps logging me out. Support never replied to {email}.",
        "I'm in Germany this week, call {de} or email {email}.",
        "Our Paris office: {fr}. Milan: {it}. Amsterdam: {nl}.",
        "Numbers on file: {gb}, {us}, {pl}.",
        "My IP is {ip} and the router says {ip}, does that help?",
        "Security log: failed logins from {ip}, {ip} and {ip} within a minute. Blocked.",
        "Can you whitelist {ip}? Our office VPN exits there. Ticket {ref}.",
        "Card {card} declined at {time}, then {card} worked. Order {order}.",
        "use card {card} pls, exp 12/27, the other one is blocked",
        "For the US tax form: SSN {ssn_word}, zip {postcode}.",
        "Agent note: SSN {ssn} confirmed against file; caller also gave {ssn} for spouse.",
        "my social is {ssn_word} can u update it, the old one had a typo",
        "HR query: employee NI {nino}, starts {date}. Payroll ref {ref}.",
        "Caller's National Insurance no. {nino}; callback {gb}.",
        "ni number is {nino}",
        "Order {order} placed {date} at {time}, total {price}. Tracking {tracking}.",
        "The app version {version} fails on checkout; build {version} works. Ticket {ref}.",
        "I used {qty} of the vouchers, the rest ({price}) should be credited.",
        "The SSN field rejected {bad_ssn}; is that even a real format?",
        "My card {bad_card} is declined, is it the wrong number?",
        "Is IBAN {bad_iban} right? The app says invalid.",
        "The router shows {bad_ip}, which looks wrong to me.",
        "The form says NI number {bad_nino} is not valid. Why?",
        "Parcel {tracking} was scanned at the depot on {date} at {time}.",
        "Return label {ref} for order {order}, refund {price}, {qty}.",
        "Meeting moved to {date} {time}; agenda v{version}; room 4.12.",
        "Customer upset about the wait, offered {price} voucher. Case {ref} closed.",
        "Thanks for the quick help!",
        "Still waiting. This is the third time I write.",
        "Where is my refund???",
        "The delivery driver was very polite, please pass on my thanks.",
        "Agent note: no answer, left voicemail, will retry tomorrow.",
        "Can I change the colour of the sofa after ordering? It's the grey one, {qty}.",
    ],
    "de": [  # German
        "Guten Tag, meine Bestellung {order} ist nicht angekommen. "
        "Bitte rufen Sie mich unter {de} an.",
        "Bitte erstatten Sie {price} auf mein Konto {iban}. Danke!",
        "Neue Handynummer: {de}, E-Mail bleibt {email}.",
        "Kunde ruft wegen Rechnung {ref} an, Rückruf unter {de} erbeten, am {date} ab {time}.",
        "Kreditkarte {card} wurde zweimal belastet ({price}).",
        "Bestellung {order} vom {date}, Betrag {price}, Sendungsnummer {tracking}.",
        "Danke für die schnelle Hilfe!",
    ],
    "fr": [  # French
        "Bonjour, ma commande {order} n'est pas arrivée. Vous pouvez me joindre au {fr}.",
        "Merci de rembourser {price} sur mon IBAN {iban}.",
        "Mon adresse e-mail est {email} et mon portable {fr}.",
        "Client rappelé le {date} à {time} au {fr}, dossier {ref}.",
        "Commande {order} du {date} à {time}, montant {price}.",
        "Le colis est arrivé abîmé, je voudrais un échange.",
    ],
    "es": [  # Spanish
        "Hola, mi pedido {order} no ha llegado. Mi móvil es {es}.",
        "Por favor, devuelvan {price} a mi cuenta {iban}.",
        "Escríbanme a {email} o llámenme al {es}, gracias.",
        "Pedido {order} del {date}, importe {price}, ref. {ref}.",
        "El producto llegó roto, quiero devolverlo.",
    ],
    "it": [  # Italian
        "Buongiorno, l'ordine {order} non è arrivato. Il mio cellulare è {it}.",
        "Vi prego di rimborsare {price} sull'IBAN {iban}.",
        "Potete contattarmi al {it} oppure a {email}.",
        "Ordine {order} del {date}, importo {price}.",
        "Il pacco è arrivato in ritardo ma completo.",
    ],
    "nl": [  # Dutch
        "Hallo, mijn bestelling {order} is niet aangekomen. Bel me op {nl}.",
        "Graag {price} terugstorten op {iban}.",
        "Mijn e-mailadres is {email}, telefoon {nl}.",
        "Bestelling {order} van {date}, bedrag {price}.",
        "Het pakket is beschadigd aangekomen.",
    ],
    "pl": [  # Polish
        "Dzień dobry, zamówienie {order} nie dotarło. Mój telefon: {pl}.",
        "Proszę o zwrot {price} na konto {iban}.",
        "Mój e-mail to {email}, numer {pl}.",
        "Zamówienie {order} z dnia {date}, kwota {price}.",
        "Paczka dotarła uszkodzona, proszę o wymianę.",
    ],
}
# Sentences around the template, as people write them: no PII, nothing that looks like it.
CONTEXT: dict[str, list[str]] = {
    "en": [
        "Hope you're well.",
        "I've been a customer for years and this has never happened before.",
        "I already tried the chat bot twice and it didn't understand me.",
        "Please get back to me as soon as possible, it's urgent.",
        "The tracking page hasn't updated since Tuesday.",
        "Honestly this is really frustrating.",
        "Thanks in advance for your help.",
        "Let me know if you need anything else from me.",
        "I'm at work until six so email is easiest.",
        "Sorry for the long message.",
        "Customer was calm and polite throughout the call.",
        "Apologised for the delay and explained the next steps.",
    ],
    "de": [
        "Ich warte jetzt schon seit über einer Woche.",
        "Vielen Dank im Voraus.",
        "Mit freundlichen Grüßen.",
        "Das ist wirklich ärgerlich.",
        "Bitte melden Sie sich so schnell wie möglich.",
    ],
    "fr": [
        "J'attends depuis plus d'une semaine.",
        "Merci d'avance pour votre aide.",
        "Cordialement.",
        "C'est vraiment agaçant.",
        "Merci de me répondre rapidement.",
    ],
    "es": [
        "Llevo más de una semana esperando.",
        "Gracias de antemano.",
        "Un saludo.",
        "Es muy frustrante.",
        "Por favor, respondan pronto.",
    ],
    "it": [
        "Aspetto da più di una settimana.",
        "Grazie in anticipo.",
        "Cordiali saluti.",
        "È davvero frustrante.",
        "Vi prego di rispondere presto.",
    ],
    "nl": [
        "Ik wacht al meer dan een week.",
        "Alvast bedankt.",
        "Met vriendelijke groet.",
        "Dit is echt vervelend.",
        "Graag snel een reactie.",
    ],
    "pl": [
        "Czekam już ponad tydzień.",
        "Z góry dziękuję.",
        "Pozdrawiam.",
        "To naprawdę frustrujące.",
        "Proszę o szybką odpowiedź.",
    ],
}


def render(template: str, language: str, rng: Rng) -> dict[str, object]:
    before = rng.sample(CONTEXT[language], rng.choice([0, 0, 1]))
    after = rng.sample(CONTEXT[language], rng.choice([0, 1, 2, 2, 3]))
    text, spans = "".join(f"{sentence} " for sentence in before), []
    for piece in re.split(r"(\{\w+\})", template):
        if piece.startswith("{") and piece.endswith("}"):
            value, kind = FILL[piece[1:-1]](rng)
            if kind is not None:
                spans.append({"start": len(text), "end": len(text) + len(value), "kind": kind})
            text += value
        else:
            text += piece
    text += "".join(f" {sentence}" for sentence in after)
    return {"text": text, "spans": spans}


def corpus(seed: int = SEED) -> list[dict[str, object]]:
    rng = random.Random(seed)  # noqa: S311 - fictional test data, not secrets
    return [
        render(template, language, rng)
        for language, templates in TEMPLATES.items()
        for template in templates
        for _ in range(USES_PER_TEMPLATE)
    ]


if __name__ == "__main__":
    messages = corpus()
    with OUT.open("w", encoding="utf-8") as out:
        for message in messages:
            out.write(json.dumps(message, ensure_ascii=False) + "\n")
    print(f"wrote {len(messages)} messages to {OUT}")
