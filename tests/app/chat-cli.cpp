/* `hearth-cli chat --project P -m MODEL` with piped input: the conversation is stored in P as it
 * happens, each user message and reply chained parent to child, each reply with its energy (joules,
 * the sensor kind, joules per token) and token counts; /reset starts a second conversation; the model
 * version is linked when the project has the model file, and a missing project file is created.
 *
 * Non-obvious choice: the model is the shared tiny model's vocabulary on fresh random weights with a
 * real chat template (Phi-3.5's), because the shared file has no template and `chat` needs one.
 */
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "hearth/gguf.h"
#include "hearth/model-writer.h"
#include "hearth/store/project.h"
#include "test-models.h"
#include "test-util.h"

using namespace hearth;

namespace {

std::string chatModel() {
  static const std::string path = test::tiny_chat_model("chat-cli-model", 21);
  return path;
}

template <class T>
T must(Expected<T> e) {
  EXPECT_TRUE(e.has_value()) << (e ? "" : e.error().to_string());
  return std::move(*e);
}

}  // namespace

TEST(ChatCli, PipedConversationIsStoredWithEnergy) {
  auto dir = test::scratch("chat-cli-project");
  auto projectPath = (dir / "p.hearth").string();
  store::Id versionId = 0;
  {
    auto project = must(store::Project::create(projectPath));
    store::Model m;
    m.name = "chat-tiny";
    m.path = chatModel();
    m.format = "gguf";
    store::ModelVersion v;
    v.modelId = must(project.addModel(m));
    versionId = must(project.addModelVersion(v));
  }
  test::write_text(dir / "in.txt", "Hello\nHow are you?\n/reset\nAgain\n/exit\n");
  auto r = test::run(test::cli() + " chat --project '" + projectPath + "' -m '" + chatModel() +
                     "' -n 6 -t 1 --seed 3 --system 'Be brief.' < '" + (dir / "in.txt").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("stored 2 conversation(s), 3 replies"), std::string::npos) << r.err;

  auto project = must(store::Project::open(projectPath));
  auto convs = must(project.conversations());
  ASSERT_EQ(convs.size(), 2u);
  const auto& first = convs[1];  // newest first
  EXPECT_EQ(first.title, "Hello");
  EXPECT_EQ(first.systemPrompt, "Be brief.");
  EXPECT_EQ(first.modelVersionId, std::optional<store::Id>(versionId));
  auto msgs = must(project.messages(first.id));
  ASSERT_EQ(msgs.size(), 4u);
  const char* roles[] = {"user", "assistant", "user", "assistant"};
  for (size_t i = 0; i < msgs.size(); ++i) {
    EXPECT_EQ(msgs[i].role, roles[i]);
    if (i == 0)
      EXPECT_FALSE(msgs[i].parentId.has_value());
    else
      EXPECT_EQ(msgs[i].parentId, std::optional<store::Id>(msgs[i - 1].id)) << i;
  }
  EXPECT_EQ(msgs[2].content, "How are you?");
  for (size_t i : {size_t(1), size_t(3)}) {
    const auto& a = msgs[i];
    EXPECT_NE(r.out.find(a.content), std::string::npos) << "stored reply was printed: " << a.content;
    EXPECT_GT(a.completionTokens, 0);
    EXPECT_LE(a.completionTokens, 6);
    EXPECT_GT(a.promptTokens, 5);
    ASSERT_TRUE(a.energyJoules.has_value()) << "reply " << i << " carries energy";
    EXPECT_GE(*a.energyJoules, 0.0);
    auto sp = nlohmann::json::parse(a.samplingParams);
    ASSERT_TRUE(sp.contains("energy")) << a.samplingParams;
    std::string sensor = sp["energy"].value("sensor", "");
    EXPECT_TRUE(sensor == "measured" || sensor == "estimated") << sensor;
    EXPECT_NEAR(sp["energy"]["joules_per_token"].get<double>(), *a.energyJoules / double(a.completionTokens),
                1e-9 * std::max(1.0, *a.energyJoules));
    EXPECT_EQ(sp["max_tokens"], 6);
  }
  auto second = must(project.messages(convs[0].id));
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(second[0].content, "Again");
  EXPECT_TRUE(second[1].energyJoules.has_value());
}

TEST(ChatCli, MissingProjectIsCreatedAndUnknownModelLeftUnlinked) {
  auto dir = test::scratch("chat-cli-new");
  auto projectPath = (dir / "sub-new.hearth").string();
  test::write_text(dir / "in.txt", "Hi\n");
  auto r = test::run(test::cli() + " chat --project '" + projectPath + "' -m '" + chatModel() +
                     "' -n 3 -t 1 < '" + (dir / "in.txt").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto project = must(store::Project::open(projectPath));
  auto convs = must(project.conversations());
  ASSERT_EQ(convs.size(), 1u);
  EXPECT_FALSE(convs[0].modelVersionId.has_value());
  auto msgs = must(project.messages(convs[0].id));
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_TRUE(msgs[1].energyJoules.has_value());

  // A file that is not a project is refused, on one line, and left as it was.
  test::write_text(dir / "not.hearth", "hello");
  auto bad = test::run(test::cli() + " chat --project '" + (dir / "not.hearth").string() + "' -m '" + chatModel() +
                       "' -n 3 -t 1 < '" + (dir / "in.txt").string() + "'");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_EQ(test::read_text(dir / "not.hearth"), "hello");
}
