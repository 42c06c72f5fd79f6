"""The Kivy side of the app: screens, widgets and the App object. Imports Kivy."""
