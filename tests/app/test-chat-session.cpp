/* ChatSession on the tiny real model (headless): a reply streamed and metered, cancelled by the caller,
 * stored as messages with energy and settings; the conversation queries of the store (list, search,
 * rename, delete); branches; adapter versions resolved to their base; a broken model file.
 *
 * Non-obvious choice: the energy checks use a scripted sensor whose counter is the exact integral of a
 * constant 100 W, so the joules a reply reports must equal 100 W x the window the meter measured, and
 * the window must enclose the generation's own prefill + decode time: an independent check of the
 * metering, not a restatement of it.
 */
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "hearth/session/chat-session.h"
#include "hearth/store/project.h"
#include "telemetry-script-sensor.h"
#include "test-util.h"

using namespace hearth;
using namespace hearth::session;

namespace {

std::string tinyModel() { return test::testdata("models/llama-2-tiny-random.gguf").string(); }

std::unique_ptr<telemetry::Sampler> constantSampler(double watts) {
  std::vector<std::unique_ptr<telemetry::Sensor>> v;
  v.push_back(std::make_unique<test::ScriptSensor>(
      "gpu0", telemetry::SensorKind::measured, [watts](double) { return watts; },
      [watts](double t) { return watts * t; }));
  auto s = telemetry::Sampler::create(std::move(v), 100);
  EXPECT_TRUE(s.has_value());
  (*s)->start();
  return std::move(*s);
}

std::unique_ptr<ChatSession> openTiny(telemetry::Sampler* sampler) {
  ChatModelOptions o;
  o.modelPath = tinyModel();
  o.threads = 2;
  auto s = ChatSession::open(o, sampler);
  EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().to_string());
  return s ? std::move(*s) : nullptr;
}

ChatSettings smallSettings(int64_t maxTokens) {
  ChatSettings s;
  s.maxTokens = maxTokens;
  s.nCtx = 256;
  s.sampling.temperature = 0.7f;
  s.sampling.seed = 42;
  return s;
}

template <class T>
T must(Expected<T> e) {
  EXPECT_TRUE(e.has_value()) << (e ? "" : e.error().to_string());
  return std::move(*e);
}

}  // namespace

TEST(ChatSession, ReplyStreamsTheTextAndCarriesMeasuredEnergy) {
  auto sampler = constantSampler(100.0);
  auto chat = openTiny(sampler.get());
  ASSERT_TRUE(chat);
  ChatSettings s = smallSettings(12);
  s.systemPrompt = "Be brief.";
  // The tiny model has no template of its own: ChatML, with the system turn first.
  EXPECT_TRUE(chat->usingFallbackTemplate(s));
  auto prompt = must(chat->render({{"user", "Hello there"}}, s));
  EXPECT_EQ(prompt.find("<|im_start|>system\nBe brief.<|im_end|>"), 0u) << prompt;
  EXPECT_NE(prompt.find("<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n"), std::string::npos);

  std::string streamed;
  auto r = must(chat->reply({{"user", "Hello there"}}, s, [&](std::string_view t) {
    streamed += t;
    return true;
  }));
  EXPECT_EQ(streamed, r.text);
  EXPECT_GT(r.stats.n_generated, 0);
  EXPECT_LE(r.stats.n_generated, 12);
  EXPECT_GT(r.stats.n_prompt, 10);
  ASSERT_TRUE(r.energy.hasData);
  EXPECT_EQ(r.energy.kind, telemetry::SensorKind::measured);
  EXPECT_EQ(r.energy.tokens, r.stats.n_generated);
  EXPECT_NEAR(r.energy.joules, 100.0 * r.energy.seconds, 1e-6 * std::max(1.0, r.energy.joules));
  EXPECT_GE(r.energy.seconds + 1e-3, r.stats.prefill_s + r.stats.decode_s);
  ASSERT_TRUE(r.energy.joulesPerToken().has_value());
  EXPECT_NEAR(*r.energy.joulesPerToken(), r.energy.joules / double(r.stats.n_generated), 1e-9);

  // Same seed, same branch: the same reply (and the second one reuses the cached prompt).
  auto again = must(chat->reply({{"user", "Hello there"}}, s));
  EXPECT_EQ(again.text, r.text);
  EXPECT_GT(again.stats.n_prompt_reused, 0);
}

TEST(ChatSession, CancelEndsTheReplyEarlyAndMarksItPartial) {
  auto sampler = constantSampler(10.0);
  auto chat = openTiny(sampler.get());
  ASSERT_TRUE(chat);
  ChatSettings s = smallSettings(200);
  s.sampling.repeat_penalty = 1.3f;
  int polls = 0;
  auto r = must(chat->reply({{"user", "Tell me a long story"}}, s, {}, [&] { return ++polls < 6; }));
  EXPECT_EQ(r.stop, StopReason::cancelled);
  EXPECT_TRUE(r.partial());
  EXPECT_LT(r.stats.n_generated, 200);

  auto msg = makeAssistantMessage(1, 1, std::nullopt, s, r);
  auto sp = nlohmann::json::parse(msg.samplingParams);
  EXPECT_EQ(sp["stop"], "cancelled");
  EXPECT_EQ(sp["partial"], true);
}

TEST(ChatSession, TemplateOverrideIsUsedAndItsErrorsNamed) {
  auto sampler = constantSampler(10.0);
  auto chat = openTiny(sampler.get());
  ASSERT_TRUE(chat);
  ChatSettings s = smallSettings(4);
  s.templateOverride = "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}[assistant] ";
  EXPECT_FALSE(chat->usingFallbackTemplate(s));
  EXPECT_EQ(must(chat->render({{"user", "hi"}}, s)), "[user] hi\n[assistant] ");
  s.templateOverride = "{{ raise_exception('no system role') }}";
  auto bad = chat->reply({{"user", "hi"}}, s);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, ErrorCode::template_error);
  EXPECT_NE(bad.error().message.find("no system role"), std::string::npos) << bad.error().message;
  s.templateOverride = "{% for %}";
  bad = chat->reply({{"user", "hi"}}, s);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("overridden chat template"), std::string::npos) << bad.error().message;
}

TEST(ChatSession, PromptLongerThanTheContextIsAnError) {
  auto sampler = constantSampler(10.0);
  auto chat = openTiny(sampler.get());
  ASSERT_TRUE(chat);
  ChatSettings s = smallSettings(4);
  s.nCtx = 128;
  std::string longText;
  for (int i = 0; i < 200; ++i) longText += "word ";
  auto r = chat->reply({{"user", longText}}, s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::out_of_range);
}

TEST(ChatSession, BrokenModelFileIsAClearError) {
  auto dir = test::scratch("chat-broken");
  auto path = dir / "broken.gguf";
  {
    std::ifstream in(tinyModel(), std::ios::binary);
    std::string head(4096, '\0');
    in.read(head.data(), std::streamsize(head.size()));
    std::ofstream out(path, std::ios::binary);
    out.write(head.data(), std::streamsize(head.size()));
  }
  ChatModelOptions o;
  o.modelPath = path;
  auto s = ChatSession::open(o);
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().to_string().find("broken.gguf"), std::string::npos) << s.error().to_string();
}

TEST(ChatSession, RepliesStoredWithEnergyAndSettingsAndBranches) {
  auto dir = test::scratch("chat-store");
  auto project = must(store::Project::create((dir / "p.hearth").string()));
  store::Model m;
  m.name = "tiny";
  m.path = tinyModel();
  m.format = "gguf";
  auto modelId = must(project.addModel(m));
  store::ModelVersion v;
  v.modelId = modelId;
  v.label = "base";
  auto versionId = must(project.addModelVersion(v));
  store::ModelVersion a;
  a.modelId = modelId;
  a.kind = "adapter";
  a.parentVersionId = versionId;
  a.path = (dir / "adapter").string();
  auto adapterId = must(project.addModelVersion(a));

  auto choices = must(listChatModels(project));
  ASSERT_EQ(choices.size(), 2u);
  EXPECT_EQ(choices[0].versionId, adapterId);  // newest first
  EXPECT_EQ(choices[0].load.modelPath, tinyModel());
  EXPECT_EQ(choices[0].load.loraPath, a.path);
  EXPECT_EQ(choices[1].load.modelPath, tinyModel());
  EXPECT_TRUE(choices[1].load.loraPath.empty());

  store::Conversation c;
  c.title = "First chat";
  c.modelVersionId = versionId;
  c.systemPrompt = "Be brief.";
  auto convId = must(project.createConversation(c));

  auto sampler = constantSampler(50.0);
  auto chat = openTiny(sampler.get());
  ASSERT_TRUE(chat);
  ChatSettings s = smallSettings(6);
  s.systemPrompt = c.systemPrompt;
  s.sampling.temperature = 0.25f;
  auto userId = must(project.addMessage(makeUserMessage(convId, std::nullopt, "Hello", versionId, s)));
  auto r = must(chat->reply({{"user", "Hello"}}, s));
  auto replyId = must(project.addMessage(makeAssistantMessage(convId, userId, versionId, s, r)));
  // An edit: a second user message under the same (absent) parent, and its reply.
  auto editId = must(project.addMessage(makeUserMessage(convId, std::nullopt, "Hello again", versionId, s)));
  auto r2 = must(chat->reply({{"user", "Hello again"}}, s));
  auto reply2Id = must(project.addMessage(makeAssistantMessage(convId, editId, versionId, s, r2)));

  auto all = must(project.messages(convId));
  ASSERT_EQ(all.size(), 4u);
  const store::Message& stored = all[1];
  EXPECT_EQ(stored.id, replyId);
  EXPECT_EQ(stored.role, "assistant");
  EXPECT_EQ(stored.content, r.text);
  EXPECT_EQ(stored.completionTokens, r.stats.n_generated);
  ASSERT_TRUE(stored.energyJoules.has_value());
  EXPECT_NEAR(*stored.energyJoules, r.energy.joules, 1e-9);
  auto sp = nlohmann::json::parse(stored.samplingParams);
  EXPECT_EQ(sp["energy"]["sensor"], "measured");
  EXPECT_NEAR(sp["energy"]["joules_per_token"].get<double>(), r.energy.joules / double(r.stats.n_generated), 1e-9);
  EXPECT_NEAR(sp["temperature"].get<double>(), 0.25, 1e-6);
  EXPECT_EQ(sp["max_tokens"], 6);

  // Branches: the path to each reply is its own user message then the reply.
  auto b1 = branchTo(all, replyId);
  ASSERT_EQ(b1.size(), 2u);
  EXPECT_EQ(b1[0].id, userId);
  auto b2 = branchTo(all, reply2Id);
  ASSERT_EQ(b2.size(), 2u);
  EXPECT_EQ(b2[0].content, "Hello again");
  EXPECT_TRUE(branchTo(all, 9999).empty());
  auto turns = turnsOf(b2);
  ASSERT_EQ(turns.size(), 2u);
  EXPECT_EQ(turns[1].role, "assistant");

  // The conversation's settings come back from its latest message and its row.
  auto back = must(conversationSettings(project, convId));
  EXPECT_EQ(back.systemPrompt, "Be brief.");
  EXPECT_NEAR(back.sampling.temperature, 0.25f, 1e-6);
  EXPECT_EQ(back.maxTokens, 6);
  EXPECT_EQ(back.nCtx, 256);
}

TEST(ChatStore, ConversationsListedSearchedRenamedDeleted) {
  auto dir = test::scratch("chat-conversations");
  auto project = must(store::Project::create((dir / "p.hearth").string()));
  store::Conversation a, b;
  a.title = "Recipes";
  b.title = "100% sure";
  auto ida = must(project.createConversation(a));
  auto idb = must(project.createConversation(b));
  store::Message m;
  m.conversationId = ida;
  m.role = "user";
  m.content = "How long do I boil an EGG?";
  must(project.addMessage(m));

  auto all = must(project.conversations());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id, idb);  // newest first
  auto egg = must(project.conversations("egg"));  // message text, case-insensitive
  ASSERT_EQ(egg.size(), 1u);
  EXPECT_EQ(egg[0].id, ida);
  auto pct = must(project.conversations("0%"));  // % matched literally
  ASSERT_EQ(pct.size(), 1u);
  EXPECT_EQ(pct[0].id, idb);
  EXPECT_TRUE(must(project.conversations("_")).empty());
  EXPECT_TRUE(must(project.conversations("nothing like this")).empty());

  store::Conversation renamed = all[1];
  renamed.title = "Cooking";
  renamed.systemPrompt = "You are a chef.";
  ASSERT_TRUE(project.updateConversation(renamed).has_value());
  auto again = must(project.conversation(ida));
  EXPECT_EQ(again.title, "Cooking");
  EXPECT_EQ(again.systemPrompt, "You are a chef.");
  store::Conversation missing;
  missing.id = 999;
  auto nf = project.updateConversation(missing);
  ASSERT_FALSE(nf.has_value());
  EXPECT_EQ(nf.error().code, ErrorCode::not_found);

  ASSERT_TRUE(project.deleteConversation(ida).has_value());
  EXPECT_EQ(must(project.conversations()).size(), 1u);
  EXPECT_TRUE(must(project.messages(ida)).empty());
  EXPECT_TRUE(must(project.verifyChain()).ok);
}
