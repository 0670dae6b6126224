/* The main window's pages, each created by one factory so the window does not know their classes.
 * Every page is a QWidget child of the window's stack and reads and writes the project through the
 * AppContext it is given (which outlives it).
 */
#pragma once

class QWidget;

namespace hearth::ui {

class AppContext;

QWidget* createChatPage(AppContext& ctx, QWidget* parent);      // chat-page.cpp
QWidget* createModelsPage(AppContext& ctx, QWidget* parent);    // model-library-page.cpp
QWidget* createComparePage(AppContext& ctx, QWidget* parent);   // compare-page.cpp (side by side)
QWidget* createPromptsPage(AppContext& ctx, QWidget* parent);   // prompt-library-page.cpp
QWidget* createRunsPage(AppContext& ctx, QWidget* parent);      // runs-page.cpp
QWidget* createFineTunePage(AppContext& ctx, QWidget* parent);  // fine-tune-page.cpp

}  // namespace hearth::ui
